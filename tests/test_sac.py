import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aquaml.algorithm import SAC, SAC2_parameter, SACParameters, soft_td_target
from aquaml.model import build_actor, build_critic
from helpers import TinyActor, TinyQ


def make_sac(**kw):
    params = SACParameters(batch_size=16, **kw)
    models = {"actor": build_actor(TinyActor, "actor", {"obs": (3,)}),
              "qf1": build_critic(TinyQ, "qf1", {"obs": (3,), "action": (1,)}),
              "qf2": build_critic(TinyQ, "qf2", {"obs": (3,), "action": (1,)})}
    return SAC(params, models)


def batches(n, b=16, seed=0, reward=None, terminated=None):
    rng = np.random.default_rng(seed)
    return {"obs": {"obs": rng.normal(size=(n, b, 3)).astype(np.float32)},
            "next_obs": {"obs": rng.normal(size=(n, b, 3)).astype(np.float32)},
            "action": rng.uniform(-1, 1, size=(n, b, 1)).astype(np.float32),
            "reward": (rng.normal(size=(n, b)) if reward is None else np.full((n, b), reward)).astype(np.float32),
            "terminated": (rng.random((n, b)) < 0.2 if terminated is None else np.full((n, b), terminated)).astype(np.float32)}


def test_soft_td_target_against_numpy():
    rng = np.random.default_rng(0)
    r, q1, q2, logp = (rng.normal(size=8) for _ in range(4))
    term = np.array([0, 1, 0, 0, 1, 0, 0, 0], np.float32)
    alpha, gamma = 0.3, 0.97
    expected = np.empty(8)
    for i in range(8):  # written out per transition, independent of the vectorised code
        bootstrap = 0.0 if term[i] else gamma * (min(q1[i], q2[i]) - alpha * logp[i])
        expected[i] = r[i] + bootstrap
    got = soft_td_target(*(jnp.asarray(x, jnp.float32) for x in (r, term, q1, q2, logp)), alpha, gamma)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_truncated_transition_bootstraps():
    # terminated=0 (time limit) bootstraps from the next state, terminated=1 does not
    t0 = soft_td_target(1.0, 0.0, 5.0, 4.0, 0.0, 0.1, 0.9)
    t1 = soft_td_target(1.0, 1.0, 5.0, 4.0, 0.0, 0.1, 0.9)
    assert float(t0) == pytest.approx(1.0 + 0.9 * 4.0) and float(t1) == pytest.approx(1.0)


def test_update_times_steps_are_one_compiled_call_without_retracing():
    sac = make_sac(tau=0.5)
    traces = {"n": 0}
    inner = sac._update_one

    def counting(state, batch):
        traces["n"] += 1
        return inner(state, batch)

    sac._update_one = counting
    sac.update = jax.jit(sac._update_many)
    state = sac.init_state(jax.random.PRNGKey(0))
    state, metrics = sac.update(state, batches(7))
    state, metrics = sac.update(state, batches(7, seed=1))
    assert traces["n"] == 1  # the scan body was traced once, then the compiled call was reused
    assert set(metrics) >= {"q_loss", "actor_loss", "alpha", "entropy"}


def test_polyak_target_update():
    sac = make_sac(tau=0.25)
    state = sac.init_state(jax.random.PRNGKey(1))
    new, _ = sac.update(state, batches(1))
    for old_t, c, t in zip(jax.tree_util.tree_leaves(state.targets), jax.tree_util.tree_leaves(new.critics),
                           jax.tree_util.tree_leaves(new.targets)):
        np.testing.assert_allclose(t, 0.25 * np.asarray(c) + 0.75 * np.asarray(old_t), rtol=1e-5, atol=1e-7)


def test_critics_learn_terminal_reward():
    """With every transition terminal and reward 1, both Q-values converge to 1."""
    sac = make_sac(auto_alpha=False)
    state = sac.init_state(jax.random.PRNGKey(2))
    for i in range(20):
        state, _ = sac.update(state, batches(200, seed=i, reward=1.0, terminated=1.0))
    probe = batches(1, b=64, seed=99)
    for k in range(2):
        q = sac.critics.q(k, state.critics[k], {"obs": probe["obs"]["obs"][0]}, probe["action"][0])
        assert np.mean(np.abs(np.asarray(q) - 1.0)) < 0.05 and np.max(np.abs(np.asarray(q) - 1.0)) < 0.3


def test_temperature_moves_toward_target_entropy():
    # target entropy far above what the policy has: alpha must grow; far below: shrink
    for target, grows in ((50.0, True), (-50.0, False)):
        sac = make_sac(target_entropy=target, alpha_learning_rate=1e-2)
        state = sac.init_state(jax.random.PRNGKey(3))
        new, _ = sac.update(state, batches(5))
        assert (float(new.log_alpha) > float(state.log_alpha)) == grows


def test_state_independent_log_std_is_learned():
    sac = make_sac()
    state = sac.init_state(jax.random.PRNGKey(4))
    assert "log_std" in state.actor  # TinyActor has no log_std output
    new, _ = sac.update(state, batches(3))
    assert not np.array_equal(new.actor["log_std"], state.actor["log_std"])


def test_parameters_seed_names_and_unknown_names():
    p = SAC2_parameter(epoch_length=200, n_epochs=10, batch_size=32, discount=0.99, alpha=0.2, tau=0.005,
                       buffer_size=100000, mini_buffer_size=1000, update_interval=50, display_interval=1,
                       calculate_episodes=5, alpha_learning_rate=3e-3, update_times=100, store_model_times=2)
    assert p.episode_length == 200 and p.update_times == 100 and p.total_steps == 500
    assert SAC2_parameter(update_interval=20).update_times == 20
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['batchsize', 'lr'\]"):
        SAC2_parameter(batchsize=3, lr=1e-3)
    with pytest.raises(ValueError, match="discount"):
        SACParameters(discount=1.5)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        SACParameters(batch_size=0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(update_interval=50.5), TypeError, "update_interval must be a whole number"),
    (dict(batch_size="32"), TypeError, "batch_size must be a whole number"),
    (dict(save_buffer="no"), TypeError, "save_buffer must be True or False"),
    (dict(target_entropy=float("nan")), TypeError, "target_entropy must be a finite number"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(batch_size=512, buffer_size=100), ValueError, "batch_size = 512 exceeds buffer_size = 100"),
    (dict(mini_buffer_size=500, batch_size=50, buffer_size=100), ValueError, "mini_buffer_size = 500 exceeds"),
])
def test_parameters_reject_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        SACParameters(**kwargs)
    assert SACParameters(update_interval=50.0).update_interval == 50  # whole floats are fine


def test_parameters_from_strings():
    p = SACParameters().with_strings({"hidden_sizes": "256,256", "auto_alpha": "false", "episode_length": "none",
                                      "tau": "0.01", "batch_size": "1e2"})
    assert p.hidden_sizes == (256, 256) and p.auto_alpha is False and p.episode_length is None
    assert p.tau == 0.01 and p.batch_size == 100
