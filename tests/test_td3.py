import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aquaml.algorithm import TD3, TD3Parameters, td3_target
from aquaml.model import ModelContractError, build_actor, build_critic
from helpers import TinyActor, TinyQ
from test_sac import batches


def make_td3(**kw):
    params = TD3Parameters(batch_size=16, **kw)
    models = {"actor": build_actor(TinyActor, "actor", {"obs": (3,)}),
              "qf1": build_critic(TinyQ, "qf1", {"obs": (3,), "action": (1,)}),
              "qf2": build_critic(TinyQ, "qf2", {"obs": (3,), "action": (1,)})}
    return TD3(params, models)


def test_td3_target_against_numpy():
    rng = np.random.default_rng(0)
    r, q1, q2 = (rng.normal(size=6) for _ in range(3))
    term = np.array([0, 0, 1, 0, 1, 0], np.float32)
    expected = [r[i] + (0.0 if term[i] else 0.95 * min(q1[i], q2[i])) for i in range(6)]
    got = td3_target(*(jnp.asarray(x, jnp.float32) for x in (r, term, q1, q2)), 0.95)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_actor_and_targets_update_only_every_policy_delay_steps():
    td3 = make_td3(policy_delay=2, tau=0.5)
    state = td3.init_state(jax.random.PRNGKey(0))
    s1, m1 = td3.update(state, batches(1))  # step 0: critics, actor and targets move
    s2, _ = td3.update(s1, batches(1, seed=1))  # step 1: only the critics move
    changed = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),  # noqa: E731
                                                                        jax.tree_util.tree_leaves(b)))
    assert changed(state.actor, s1.actor) and changed(state.targets, s1.targets)
    assert changed(state.actor_target, s1.actor_target)
    assert changed(s1.critics, s2.critics)
    assert not changed(s1.actor, s2.actor) and not changed(s1.targets, s2.targets)
    assert not changed(s1.actor_target, s2.actor_target)
    assert int(s2.step) == 2 and np.isfinite(float(m1["actor_loss"]))


def test_exploration_noise_stays_in_range_and_deterministic_is_tanh_mean():
    td3 = make_td3(exploration_noise=5.0)
    state = td3.init_state(jax.random.PRNGKey(1))
    obs = {"obs": np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)}
    noisy, _, _ = td3.act(state.actor, obs, jax.random.PRNGKey(2))
    assert np.all(np.abs(noisy["action"]) <= 1.0) and np.any(np.abs(noisy["action"]) == 1.0)
    det, _, _ = td3.act(state.actor, obs, jax.random.PRNGKey(2), deterministic=True)
    mean = td3.policy.outputs(state.actor["net"], obs)["action"]
    np.testing.assert_allclose(det["action"], np.tanh(mean), rtol=1e-6)


def test_deterministic_policy_rejects_log_std_output():
    class WithLogStd(TinyActor):
        def __init__(self):
            super().__init__()
            self.output_info = {"action": (1,), "log_std": (1,)}

        def call(self, obs):
            x = self.mu(self.d1(obs))
            return x, x

    models = {"actor": build_actor(WithLogStd, "actor", {"obs": (3,)}),
              "qf1": build_critic(TinyQ, "qf1", {"obs": (3,), "action": (1,)}),
              "qf2": build_critic(TinyQ, "qf2", {"obs": (3,), "action": (1,)})}
    with pytest.raises(ModelContractError, match="'log_std' has no use in a deterministic policy"):
        TD3(TD3Parameters(), models)


def test_td3_parameters_checks():
    with pytest.raises(ValueError, match="policy_noise must be >= 0"):
        TD3Parameters(policy_noise=-0.1)
    with pytest.raises(TypeError, match="unknown parameter"):
        TD3Parameters.from_kwargs(alpha=0.2)
