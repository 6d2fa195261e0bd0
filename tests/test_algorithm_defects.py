"""Regression tests of loss and parameter defects in TD3+BC, AIRL, AMP, IQL and GAIL, each against
an independent numpy reference written in the paper's notation. Losses that read actions are
checked with 1-D and 6-D actions: the algorithms are built from their models directly (no
environment), so any action dimension can be tried."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from aquaml import RLTaskStarter
from aquaml.algorithm import (AIRL, AMP, IQL, TD3BC, AIRLParameters, AIRLPPOParameters, AMPParameters,
                              GAILParameters, GAILPPOParameters, IQLParameters, TD3BCParameters)
from aquaml.algorithm.td3bc import td3bc_actor_loss
from aquaml.data import Dataset, save_data
from helpers import build_algorithm

OBS_DIM = 3


def transitions(rng, n, action_dim, terminated_share=0.0):
    obs = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    return {"obs": {"obs": obs}, "next_obs": {"obs": (obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32)},
            "action": rng.uniform(-0.95, 0.95, (n, action_dim)).astype(np.float32),
            "reward": np.zeros(n, np.float32), "terminated": (rng.random(n) < terminated_share).astype(np.float32),
            "truncated": np.zeros(n, np.float32)}


# -- 1. TD3+BC: the cloning term is F.mse_loss, a mean over batch and action dimensions ----------------
def td3bc_reference(Q, pi, a, alpha):
    """Fujimoto and Gu (2021), eq. 3 with their code's F.mse_loss:
    pi = argmax E[lambda Q(s, pi(s)) - (pi(s) - a)^2], lambda = alpha / (1/N sum_i |Q(s_i, pi(s_i))|),
    the squared error averaged over all N * d elements."""
    N, d = pi.shape
    lam = alpha / (sum(abs(float(Q[i])) for i in range(N)) / N)
    q_term = sum(float(Q[i]) for i in range(N)) / N
    bc_term = sum((float(pi[i, j]) - float(a[i, j])) ** 2 for i in range(N) for j in range(d)) / (N * d)
    return -lam * q_term + bc_term


@pytest.mark.parametrize("action_dim", [1, 6])
def test_td3bc_actor_loss_averages_the_cloning_term_over_action_dimensions(action_dim):
    rng = np.random.default_rng(action_dim)
    N = 32
    Q = (rng.normal(size=N) * 10).astype(np.float32)
    pi, a = rng.uniform(-1, 1, (2, N, action_dim)).astype(np.float32)
    loss = td3bc_actor_loss(jnp.asarray(Q), jnp.asarray(pi), jnp.asarray(a), 2.5)
    np.testing.assert_allclose(loss, td3bc_reference(Q, pi, a, 2.5), rtol=1e-5)
    # d loss / d pi_ij = 2 (pi_ij - a_ij) / (N d)
    grad = jax.grad(lambda p: td3bc_actor_loss(jnp.asarray(Q), p, jnp.asarray(a), 2.5))(jnp.asarray(pi))
    np.testing.assert_allclose(grad, 2 * (pi - a) / (N * action_dim), rtol=1e-5, atol=1e-8)

    # the same through the algorithm: its actor and first critic give pi(s) and Q(s, pi(s))
    algo = build_algorithm(TD3BC, TD3BCParameters(hidden_sizes=(8,)), action_dim)
    state = algo.init_state(jax.random.PRNGKey(0)).inner
    batch = transitions(rng, N, action_dim)
    loss = algo._actor_loss(state.actor, state.critics, batch)
    pi = np.asarray(algo.policy.action(state.actor, batch["obs"])[0])
    Q = np.asarray(algo.critics.q(0, state.critics[0], batch["obs"], jnp.asarray(pi)))
    np.testing.assert_allclose(loss, td3bc_reference(Q, pi, batch["action"], 2.5), rtol=1e-4)


# -- 2. AIRL's SAC generator can learn at temperature 1 ---------------------------------------------------
@pytest.mark.parametrize("action_dim", [1, 6])
def test_airls_sac_generator_optimises_the_airl_reward_at_temperature_one(action_dim):
    """Fu et al. (2018): D = exp(f) / (exp(f) + pi(a|s)) and the generator maximises
    E sum_t gamma^t (log D - log(1 - D)). SAC maximises E sum_t gamma^t (r - alpha log pi) with
    r = f, which is that objective only at alpha = 1: with auto_alpha=False alpha stays at 1 (the
    default tunes it from 1: docs/imitation.md, "AIRL's temperature", has the measurement)."""
    assert AIRLParameters().alpha == 1.0 and AIRLParameters().auto_alpha
    params = AIRLParameters(hidden_sizes=(8,), auto_alpha=False)
    algo = build_algorithm(AIRL, params, action_dim)
    state = algo.init_state(jax.random.PRNGKey(0))
    rng = np.random.default_rng(action_dim)
    for _ in range(3):  # a few updates: an automatic temperature would drift from its start
        state, _ = algo._update_one(state, (transitions(rng, 16, action_dim), transitions(rng, 16, action_dim)))
    alpha = float(np.exp(state.gen.log_alpha))

    batch = transitions(rng, 16, action_dim)  # no terminations: no absorbing-state term
    r = np.asarray(algo.learned_reward(state.disc, state.absorbing_logit, state.gen, batch), np.float64)
    log_pi = np.asarray(algo.log_prob_of(state.gen, batch["obs"], batch["action"]), np.float64)
    f = np.asarray(algo.shaped_reward(state.disc, batch), np.float64)
    D = np.exp(f) / (np.exp(f) + np.exp(log_pi))
    airl_reward = np.log(D) - np.log(1 - D)
    # what SAC optimises per step, r - alpha log pi, is AIRL's reward
    np.testing.assert_allclose(r - alpha * log_pi, airl_reward, rtol=1e-4, atol=1e-4)
    assert alpha == pytest.approx(1.0) and not params.auto_alpha


# -- 3. AMP's gradient penalty is (w_gp / 2) E |grad D|^2 ----------------------------------------------
class LinearDiscriminator(keras.Model):
    """D(s, a, s') = [s, a, s'] . W + b: its input gradient is W everywhere."""

    def __init__(self):
        super().__init__()
        self.out = keras.layers.Dense(1)
        self.input_name = ("obs", "action", "next_obs")
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, obs, action, next_obs):
        return self.out(keras.ops.concatenate([obs, action, next_obs], axis=-1))

    def reset(self):
        pass


@pytest.mark.parametrize("action_dim", [1, 6])
def test_amp_gradient_penalty_is_half_the_weight_times_the_squared_gradient(action_dim):
    """Peng et al. (2021), eq. 8: argmin_D E_M[(D(s, s') - 1)^2] + E_pi[(D(s, s') + 1)^2]
    + (w_gp / 2) E_M[|grad_phi D(phi)|^2]. Here the discriminator also reads the action."""
    w_gp = 10.0
    algo = build_algorithm(AMP, AMPParameters(gradient_penalty=w_gp, hidden_sizes=(8,)), action_dim,
                 {"discriminator": LinearDiscriminator})
    state = algo.init_state(jax.random.PRNGKey(0))
    rng = np.random.default_rng(action_dim)
    n_in = 2 * OBS_DIM + action_dim
    W = rng.normal(size=(n_in, 1)).astype(np.float32)
    b = np.float32(0.3)
    (kernel, bias) = state.disc["discriminator"]
    assert kernel.shape == (n_in, 1) and bias.shape == (1,)
    disc = {"discriminator": [jnp.asarray(W), jnp.asarray([b])]}
    absorbing = jnp.float32(0.4)
    expert, policy = transitions(rng, 24, action_dim, 0.25), transitions(rng, 24, action_dim, 0.5)
    loss, metrics = algo._disc_loss((disc, absorbing), state.gen, policy, expert)

    def D(batch):
        x = np.concatenate([batch["obs"]["obs"], batch["action"], batch["next_obs"]["obs"]], axis=1)
        return (x.astype(np.float64) @ W.astype(np.float64))[:, 0] + b

    grad_sq = float(np.sum(W.astype(np.float64) ** 2))  # |grad D|^2 = |W|^2 at every input
    want = (np.mean((D(expert) - 1) ** 2) + np.mean((D(policy) + 1) ** 2)
            # the absorbing state, as often as terminations (AquaML's DAC-style episode ends)
            + np.mean(expert["terminated"]) * (0.4 - 1) ** 2 + np.mean(policy["terminated"]) * (0.4 + 1) ** 2
            + w_gp / 2 * grad_sq)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(metrics["grad_penalty"], grad_sq, rtol=1e-5)  # logged: E |grad D|^2


# -- 4. IQL scales rewards by 1000 / (max - min episode return) -----------------------------------------
def episodes_with_returns(rewards_per_episode, seed=0):
    rng = np.random.default_rng(seed)
    eps = []
    for rewards in rewards_per_episode:
        T = len(rewards)
        obs = rng.normal(size=(T + 1, OBS_DIM)).astype(np.float32)
        ends = np.zeros(T, bool)
        ends[-1] = True
        eps.append({"observations": {"obs": obs}, "action": rng.uniform(-1, 1, (T, 1)).astype(np.float32),
                    "reward": np.asarray(rewards, np.float32), "terminated": np.zeros(T, bool), "truncated": ends})
    return Dataset.from_episodes(eps, {"env": "Pendulum-v1"})


def test_iql_normalises_rewards_by_the_range_of_episode_returns(tmp_path):
    """Kostrikov et al.'s IQL (MuJoCo): r <- r * 1000 / (max_k R_k - min_k R_k), R_k the return
    of episode k of the dataset."""
    rewards = [[-1.0, -2.5, -4.0, -5.0], [0.5, 1.0, 1.5], [2.0, 2.0, 1.5, 1.0, 1.0]]  # returns -12.5, 3, 7.5
    path = save_data(tmp_path / "d.npz", episodes_with_returns(rewards))
    returns = [sum(ep) for ep in rewards]
    want_scale = 1000.0 / (max(returns) - min(returns))  # 1000 / 20 = 50
    raw = np.concatenate([np.asarray(ep, np.float32) for ep in rewards])
    base = dict(dataset=str(path), n_epochs=1, update_times=5, batch_size=8, hidden_sizes=(8,), episode_length=10,
                calculate_episodes=1)

    assert IQLParameters().normalize_rewards  # on by default
    for normalize, scale in ((True, want_scale), (False, 1.0)):
        starter = RLTaskStarter("Pendulum-v1", None, IQL, IQLParameters(**base, normalize_rewards=normalize),
                                run_root=tmp_path, progress=False)
        data = starter.learner.data
        np.testing.assert_allclose(starter.algo.prepare_batches(data)["reward"], raw * scale, rtol=1e-6)
        batch = starter.learner.prepare(None, np.random.default_rng(0))  # what the update receives
        drawn = batch["reward"].reshape(-1)
        assert np.abs(drawn[:, None] - (raw * scale)[None, :]).min(axis=1).max() < 1e-3 * scale
        starter.close()


def test_iql_finds_episodes_without_end_flags_by_their_observations():
    from aquaml.algorithm.iql import episode_returns

    ds = episodes_with_returns([[1.0, 2.0], [5.0, 5.0, 5.0], [-3.0]])
    flat = ds.transitions()
    np.testing.assert_allclose(episode_returns(flat), [3.0, 15.0, -3.0])
    flat["truncated"] = np.zeros_like(flat["truncated"])  # episode ends only in the observations
    np.testing.assert_allclose(episode_returns(flat), [3.0, 15.0, -3.0])


# -- 5. GAIL's cross-entropy discriminator refuses AMP's reward -----------------------------------------
@pytest.mark.parametrize("P", [GAILParameters, GAILPPOParameters, AIRLParameters, AIRLPPOParameters])
def test_the_amp_reward_with_a_cross_entropy_discriminator_is_refused_at_construction(P):
    with pytest.raises(ValueError, match=r"reward = 'amp'.*least-squares.*Use reward='logit'.*aquaml train amp"):
        P(reward="amp")
    with pytest.raises(ValueError, match=r"reward = 'amp'"):  # the CLI's --set reward=amp
        P().with_strings({"reward": "amp"})
    assert AMPParameters().reward == "amp"  # AMP's own least-squares discriminator keeps it


# -- 6. adversarial learners need gamma < 1 -----------------------------------------------------------
@pytest.mark.parametrize("P", [GAILParameters, GAILPPOParameters, AIRLParameters, AIRLPPOParameters, AMPParameters])
def test_adversarial_learners_refuse_a_discount_of_one(P):
    with pytest.raises(ValueError, match=r"discount = 1.0: adversarial imitation needs discount < 1"):
        P(discount=1.0)
    assert P(discount=0.999).discount == 0.999
