import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aquaml.algorithm import TD3, TD3Parameters, td3_target
from aquaml.model import ModelContractError, build_actor, build_critic
from helpers import TinyActor, TinyQ, build_algorithm, mlp_numpy, numeric_gradient
from helpers import replay_batches as batches


def make_td3(action_dim=1, hidden=8, actor_optimizer="Adam", actor_learning_rate=1e-3, **kw):
    models = {"actor": lambda: TinyActor(action_dim, hidden, actor_optimizer, actor_learning_rate),
              "qf1": lambda: TinyQ(hidden), "qf2": lambda: TinyQ(hidden)}
    return build_algorithm(TD3, TD3Parameters(batch_size=16, **kw), action_dim, models)


def test_td3_target_against_hand_computed_values():
    # y = r + gamma (1 - d) min(Q1', Q2'), gamma = 0.9:
    #   r = 1, Q' = (5, 4): 1 + 0.9 * 4 = 4.6;  r = -1, Q' = (-3, 2): -1 - 2.7 = -3.7;  terminal r = 2: 2
    got = td3_target(jnp.array([1.0, -1.0, 2.0]), jnp.array([0.0, 0.0, 1.0]), jnp.array([5.0, -3.0, 5.0]),
                     jnp.array([4.0, 2.0, 4.0]), 0.9)
    np.testing.assert_allclose(got, [4.6, -3.7, 2.0], rtol=1e-6)


def td3_critic_loss(actor_target, targets, critics, batch, eps, policy_noise, noise_clip, gamma):
    """Fujimoto et al. (2018), eq. 14 and Algorithm 1, written per sample and action dimension:
    a'_j = clip(pi'(s')_j + clip(sigma~ eps_j, -c, c), -1, 1), y = r + gamma (1 - d) min_k Q'_k(s', a'),
    loss = sum_k 1/N sum_i (Q_k(s_i, a_i) - y_i)^2. Also returns how many noise draws and target
    actions were clipped."""
    obs, next_obs = batch["obs"]["obs"][0], batch["next_obs"]["obs"][0]
    N, d = eps.shape
    loss, noise_clipped, action_clipped = 0.0, 0, 0
    for i in range(N):
        mean = np.tanh(mlp_numpy(actor_target["net"], next_obs[i][None])[0])
        a_next = np.empty(d)
        for j in range(d):
            noise = policy_noise * eps[i, j]
            if abs(noise) > noise_clip:
                noise, noise_clipped = np.sign(noise) * noise_clip, noise_clipped + 1
            a_next[j] = mean[j] + noise
            if abs(a_next[j]) > 1:
                a_next[j], action_clipped = np.sign(a_next[j]), action_clipped + 1
        x_next = np.concatenate([next_obs[i], a_next])[None]
        q_next = min(mlp_numpy(t, x_next)[0, 0] for t in targets)
        y = batch["reward"][0, i] + gamma * (1 - batch["terminated"][0, i]) * q_next
        x = np.concatenate([obs[i], batch["action"][0, i]])[None]
        loss += sum((mlp_numpy(c, x)[0, 0] - y) ** 2 for c in critics) / N
    return loss, noise_clipped, action_clipped


def td3_actor_objective(W, b, critic, obs):
    """The deterministic policy gradient's objective (Fujimoto et al. 2018, Algorithm 1), for a
    linear actor: J = -1/N sum_i Q1(s_i, tanh(s_i W + b)); the first critic only."""
    return -np.mean([mlp_numpy(critic, np.concatenate([s, np.tanh(s @ W + b)])[None])[0, 0] for s in obs])


@pytest.mark.parametrize("action_dim", [1, 6])
def test_critic_target_smoothing_and_actor_step_against_numpy(action_dim):
    """One update with linear models: the critics' loss against targets from smoothed target actions
    (noise clipped to noise_clip, actions to [-1, 1], per dimension), the actor's loss against the
    updated first critic, and its SGD step against finite differences of that objective."""
    lr, sigma, c = 0.05, 0.5, 0.3
    td3 = make_td3(action_dim, hidden=0, actor_optimizer="SGD", actor_learning_rate=lr, policy_noise=sigma,
                   noise_clip=c)
    state = td3.init_state(jax.random.PRNGKey(3))
    W, b = state.actor_target["net"]
    state = state._replace(actor_target={"net": [4 * W, b]})  # saturated target actions: noise pushes past +-1
    batch = batches(1, action_dim=action_dim, seed=action_dim)
    new, metrics = td3.update(state, batch)

    _, k_noise = jax.random.split(state.key)  # the update's second key draws the smoothing noise
    eps = np.asarray(jax.random.normal(k_noise, (16, action_dim), jnp.float32), np.float64)
    loss, noise_clipped, action_clipped = td3_critic_loss(state.actor_target, state.targets, state.critics, batch, eps,
                                                          sigma, c, td3.params.discount)
    assert 0 < noise_clipped < eps.size and 0 < action_clipped < eps.size  # both clips are exercised
    np.testing.assert_allclose(metrics["q_loss"], loss, rtol=1e-5)

    obs = batch["obs"]["obs"][0].astype(np.float64)
    W, b = (np.asarray(x, np.float64) for x in state.actor["net"])
    np.testing.assert_allclose(metrics["actor_loss"], td3_actor_objective(W, b, new.critics[0], obs), rtol=1e-5,
                               atol=1e-6)
    grads = numeric_gradient(lambda a: td3_actor_objective(*a, new.critics[0], obs), [W, b])
    for old, moved, g in zip(state.actor["net"], new.actor["net"], grads):
        np.testing.assert_allclose((np.asarray(old, np.float64) - np.asarray(moved, np.float64)) / lr, g,
                                   rtol=1e-3, atol=2e-5)


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
