import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aquaml.algorithm import SAC, SAC2_parameter, SACParameters, soft_td_target
from helpers import TinyActor, TinyQ, build_algorithm, mlp_numpy, numeric_gradient
from helpers import replay_batches as batches


def make_sac(action_dim=1, hidden=8, actor_optimizer="Adam", actor_learning_rate=1e-3, **kw):
    models = {"actor": lambda: TinyActor(action_dim, hidden, actor_optimizer, actor_learning_rate),
              "qf1": lambda: TinyQ(hidden), "qf2": lambda: TinyQ(hidden)}
    return build_algorithm(SAC, SACParameters(batch_size=16, **kw), action_dim, models)


def test_soft_td_target_against_hand_computed_values():
    # y = r + gamma (1 - d) (min(Q1', Q2') - alpha log pi(a'|s')), alpha = 0.5, gamma = 0.9:
    #   r   d  Q1'  Q2'  log pi   min - alpha log pi     y
    #   1   0   5    4    -2      4 + 1     = 5          1 + 0.9 * 5   = 5.5
    #  -1   0  -3    2     1     -3 - 0.5   = -3.5      -1 - 0.9 * 3.5 = -4.15
    #   2   1   5    4    -2      (terminal: no bootstrap)               2
    #   0   0   1    1     0      1                       0.9
    r, term = jnp.array([1.0, -1.0, 2.0, 0.0]), jnp.array([0.0, 0.0, 1.0, 0.0])
    q1, q2, logp = jnp.array([5.0, -3.0, 5.0, 1.0]), jnp.array([4.0, 2.0, 4.0, 1.0]), jnp.array([-2.0, 1.0, -2.0, 0.0])
    np.testing.assert_allclose(soft_td_target(r, term, q1, q2, logp, 0.5, 0.9), [5.5, -4.15, 2.0, 0.9], rtol=1e-6)


def test_truncated_transition_bootstraps():
    # terminated=0 (time limit) bootstraps from the next state, terminated=1 does not
    t0 = soft_td_target(1.0, 0.0, 5.0, 4.0, 0.0, 0.1, 0.9)
    t1 = soft_td_target(1.0, 1.0, 5.0, 4.0, 0.0, 0.1, 0.9)
    assert float(t0) == pytest.approx(1.0 + 0.9 * 4.0) and float(t1) == pytest.approx(1.0)


def sac_actor_objective(W, b, log_std, critics, obs, eps, alpha):
    """Haarnoja et al. (2018), eq. 7 (the second paper's J_pi), reparameterised, for a linear actor
    mu(s) = s W + b: a_i = tanh(u_i), u_i = mu(s_i) + sigma * eps_i, and
    J_pi = 1/N sum_i [alpha log pi(a_i|s_i) - min_k Q_k(s_i, a_i)], where by the change of variables
    log pi(a|s) = log N(u; mu(s), diag sigma^2) - sum_j log(1 - tanh(u_j)^2). Returns J_pi and each
    log pi(a_i|s_i)."""
    N, d = eps.shape
    sigma = np.exp(np.clip(log_std, -5.0, 2.0))
    log_pis, total = np.empty(N), 0.0
    for i in range(N):
        mu = obs[i] @ W + b
        u = mu + sigma * eps[i]
        a = np.tanh(u)
        log_pis[i] = stats.norm.logpdf(u, mu, sigma).sum()  # independent dimensions
        for j in range(d):
            log_pis[i] -= np.log(1.0 - a[j] ** 2)
        q = min(mlp_numpy(c, np.concatenate([obs[i], a])[None])[0, 0] for c in critics)
        total += alpha * log_pis[i] - q
    return total / N, log_pis


@pytest.mark.parametrize("action_dim", [1, 6])
def test_actor_and_temperature_losses_and_the_actor_step_against_numpy(action_dim):
    """One update of a linear actor by SGD: the actor's loss, its gradient (finite differences of
    the numpy objective) and the temperature's loss with the default target entropy -dim(A)."""
    lr = 0.05
    sac = make_sac(action_dim, hidden=0, actor_optimizer="SGD", actor_learning_rate=lr)
    state = sac.init_state(jax.random.PRNGKey(5))
    # a narrow policy: at 6-D its entropy lies between -6 and -1, so a target of -1 would flip alpha's step
    state = state._replace(actor={**state.actor, "log_std": jnp.full((action_dim,), -1.8, jnp.float32)})
    batch = batches(1, action_dim=action_dim, seed=action_dim)
    new, metrics = sac.update(state, batch)

    _, _, k_pi = jax.random.split(state.key, 3)  # the update's third key draws the actor's noise
    eps = np.asarray(jax.random.normal(k_pi, (16, action_dim), jnp.float32), np.float64)
    obs = batch["obs"]["obs"][0].astype(np.float64)
    W, b = (np.asarray(x, np.float64) for x in state.actor["net"])
    log_alpha = float(state.log_alpha)
    critics = new.critics  # the actor steps against the critics just updated

    def objective(arrays):
        return sac_actor_objective(*arrays, critics, obs, eps, np.exp(log_alpha))[0]

    J, log_pis = sac_actor_objective(W, b, np.asarray(state.actor["log_std"], np.float64), critics, obs, eps,
                                     np.exp(log_alpha))
    np.testing.assert_allclose(metrics["actor_loss"], J, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(metrics["entropy"], -np.mean(log_pis), rtol=1e-4, atol=1e-5)
    # SGD: theta' = theta - lr * dJ/dtheta
    grads = numeric_gradient(objective, [W, b, state.actor["log_std"]])
    for old, moved, g in zip([*state.actor["net"], state.actor["log_std"]], [*new.actor["net"], new.actor["log_std"]],
                             grads):
        np.testing.assert_allclose((np.asarray(old, np.float64) - np.asarray(moved, np.float64)) / lr, g,
                                   rtol=1e-3, atol=2e-4)

    # J(alpha) = E[-alpha (log pi + H)], H = -dim(A) (differentiated in log alpha, as the code logs it)
    np.testing.assert_allclose(metrics["alpha_loss"], -log_alpha * np.mean(log_pis - action_dim), rtol=1e-4)
    entropy = -np.mean(log_pis)
    if action_dim > 1:
        assert -action_dim < entropy < -1
    # alpha grows while the entropy is below the target, shrinks above it
    assert (float(new.log_alpha) > log_alpha) == (entropy < -action_dim)
    assert sac.target_entropy == -action_dim


@pytest.mark.parametrize("action_dim", [1, 6])
def test_log_prob_of_given_actions_matches_scipy(action_dim):
    """log pi(a|s) of stored actions (AIRL's logit reads it): the Gaussian's density at atanh(a) times
    the Jacobian of atanh, 1 / (1 - a_j^2) in each dimension."""
    sac = make_sac(action_dim)
    state = sac.init_state(jax.random.PRNGKey(0))
    state = state._replace(actor={**state.actor, "log_std": jnp.linspace(-1.0, 0.5, action_dim)})
    batch = batches(1, b=8, action_dim=action_dim, seed=3)
    obs, action = batch["obs"]["obs"][0], batch["action"][0].astype(np.float64)
    mean = mlp_numpy(state.actor["net"], obs)
    std = np.exp(np.asarray(state.actor["log_std"], np.float64))
    want = [stats.norm.logpdf(np.arctanh(a), m, std).sum() - sum(np.log(1 - x ** 2) for x in a)
            for a, m in zip(action, mean)]
    np.testing.assert_allclose(sac.log_prob_of(state, {"obs": obs}, batch["action"][0]), want, rtol=1e-4, atol=1e-4)
    at_bound = np.ones((1, action_dim), np.float32)  # atanh(1) is infinite: the code moves it just inside
    assert np.isfinite(np.asarray(sac.log_prob_of(state, {"obs": obs[:1]}, at_bound))).all()


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
