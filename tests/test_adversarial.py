"""Adversarial imitation (GAIL, AIRL, AMP): losses and rewards against numpy, episode ends that
leak no reward, named discriminator inputs, exact resume, workers, the CLI and bad input."""
import json

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from aquaml import RLTaskStarter
from aquaml.algorithm import (AIRL, AIRLPPO, AMP, GAIL, GAILPPO, AIRLParameters, AIRLPPOParameters, AMPParameters,
                              GAILParameters, GAILPPOParameters)
from aquaml.algorithm.adversarial import absorbing_bonus, expert_loss, imitation_reward, policy_loss
from aquaml.data import DatasetError, save_data
from helpers import LSTMDiscriminator, assert_resumes_exactly, cartpole_demos, pendulum_dataset


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    return str(save_data(tmp_path_factory.mktemp("demos") / "demos.npz", pendulum_dataset(episodes=3, with_pos=True)))


def small(P, demos, **kw):
    base = dict(dataset=demos, n_epochs=4, update_interval=20, update_times=5, batch_size=32, mini_buffer_size=40,
                hidden_sizes=(16,), display_interval=2, calculate_episodes=1, episode_length=30)
    return P(**{**base, **kw})


# -- losses and rewards against independent references ----------------------------------------
def absorbing_state_value(r_a, gamma, steps=20000):
    """DAC (Kostrikov et al. 2019): after a termination the agent stays in the absorbing state for
    ever, earning r_a each step from the next one on: sum_{t >= 1} gamma^t r_a, summed term by term."""
    total, discount = 0.0, 1.0
    for _ in range(steps):
        discount *= gamma
        total += discount * r_a
    return total


def test_discriminator_losses_and_rewards_against_scipy_and_hand_computed_values():
    from scipy.special import expit

    logit = np.linspace(-4, 4, 9).astype(np.float32)
    D = expit(logit.astype(np.float64))  # the discriminator's probability that a sample is the expert's
    np.testing.assert_allclose(expert_loss("bce", jnp.asarray(logit)), -np.log(D), rtol=1e-5)
    np.testing.assert_allclose(policy_loss("bce", jnp.asarray(logit)), -np.log(1 - D), rtol=1e-5)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "logit"), np.log(D) - np.log(1 - D),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "positive"), -np.log(1 - D), rtol=1e-5)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "negative"), np.log(D), rtol=1e-5)
    # AMP (Peng et al. 2021): least squares towards +1 (expert) and -1 (agent); at D = -4 ... 4:
    np.testing.assert_allclose(expert_loss("least_squares", jnp.asarray(logit)), [25, 16, 9, 4, 1, 0, 1, 4, 9])
    np.testing.assert_allclose(policy_loss("least_squares", jnp.asarray(logit)), [9, 4, 1, 0, 1, 4, 9, 16, 25])
    # style reward max(0, 1 - (D - 1)^2 / 4): 1 - 9/4, 1 - 4/4 and 1 - 1/4 at D = -2, -1 and 0, ...
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "amp"), [0, 0, 0, 0, 0.75, 1, 0.75, 0, 0],
                               atol=1e-7)


def test_absorbing_bonus_is_the_absorbing_states_value_on_terminal_transitions_only():
    terminated = jnp.asarray([0.0, 1.0, 0.0, 1.0])
    for r_a, gamma in ((-0.5, 0.99), (2.0, 0.9)):  # -0.5 * 0.99 / 0.01 = -49.5; 2 * 0.9 / 0.1 = 18
        value = absorbing_state_value(r_a, gamma)
        np.testing.assert_allclose(value, {0.99: -49.5, 0.9: 18.0}[gamma], rtol=1e-9)
        bonus = absorbing_bonus(terminated, jnp.float32(r_a), gamma)
        np.testing.assert_allclose(bonus, [0, value, 0, value], rtol=1e-5)


def synthetic_batches(rng, updates, n, terminated_share):
    def one(share):
        obs = rng.normal(size=(updates, n, 3)).astype(np.float32)
        terminated = (rng.random((updates, n)) < share).astype(np.float32)
        return {"obs": {"obs": obs, "pos": obs[..., :2]}, "next_obs": {"obs": obs + 0.1, "pos": obs[..., :2] + 0.1},
                "action": rng.uniform(-1, 1, (updates, n, 1)).astype(np.float32),
                "reward": np.zeros((updates, n), np.float32), "terminated": terminated,
                "truncated": np.zeros((updates, n), np.float32)}
    return one


@pytest.mark.parametrize("expert_share,agent_share", [(0.0, 0.5), (0.5, 0.0), (0.3, 0.3), (0.1, 0.4)])
def test_episode_ends_leak_no_reward(demos, expert_share, agent_share):
    """The absorbing state's reward follows the termination rates: an agent that ends episodes
    more often than the expert is charged for it, less often paid, equally often neither."""
    params = small(GAILParameters, demos, discriminator_learning_rate=0.02)
    starter = RLTaskStarter("Pendulum-v1", None, GAIL, params, progress=False)
    algo, state = starter.algo, starter.state
    make = synthetic_batches(np.random.default_rng(0), 20, 256, None)
    for _ in range(30):
        state, metrics = algo.update(state, (make(agent_share), make(expert_share)))
    logit = float(state.absorbing_logit)
    if expert_share == 0 or agent_share == 0:
        assert np.sign(logit) == (1 if expert_share else -1) and abs(logit) > 3
    else:  # the optimum of the weighted logistic loss: sigmoid(l) = p_E / (p_E + p_agent)
        assert abs(1 / (1 + np.exp(-logit)) - expert_share / (expert_share + agent_share)) < 0.05
    bonus = absorbing_bonus(jnp.float32(1.0), imitation_reward(jnp.float32(logit), "logit"), 0.99)
    assert (bonus < -1) if expert_share < agent_share else (bonus > 1) if expert_share > agent_share else abs(bonus) < 10
    starter.close()


def test_truncations_bootstrap_and_get_no_absorbing_reward(demos):
    starter = RLTaskStarter("Pendulum-v1", None, GAIL, small(GAILParameters, demos), progress=False)
    algo = starter.algo
    state = starter.state._replace(absorbing_logit=jnp.float32(-3.0))
    batch = synthetic_batches(np.random.default_rng(1), 1, 8, None)(0.0)
    one = jax.tree_util.tree_map(lambda x: x[0], batch)
    one["truncated"] = np.ones(8, np.float32)
    logit = algo.disc_logits(state.disc, state.gen, one)
    # the reward the generator sees: the logit alone (no absorbing term on truncations)
    _, metrics = algo._update_one(state, (one, one))
    new_disc = algo._disc_step(state, one, one)[0]
    np.testing.assert_allclose(metrics["imitation_reward"], np.mean(algo.disc_logits(new_disc, state.gen, one)),
                               rtol=1e-4, atol=1e-6)
    assert np.isfinite(np.asarray(logit)).all()
    starter.close()


# -- named inputs, roles and saved models ------------------------------------------------------
class StateOnlyDiscriminator(keras.Model):
    """Imitation from observations alone: scores (s, s')."""

    def __init__(self):
        super().__init__()
        self.d1, self.out = keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)
        self.input_name = ("obs", "next_obs")
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, obs, next_obs):
        return self.out(self.d1(keras.ops.concatenate([obs, next_obs], axis=-1)))

    def reset(self):
        pass


def test_user_discriminators_read_named_transitions(demos, tmp_path):
    starter = RLTaskStarter("Pendulum-v1", {"discriminator": StateOnlyDiscriminator}, GAIL,
                            small(GAILParameters, demos), run_root=tmp_path, progress=False)
    assert starter.models["discriminator"].input_names == ("obs", "next_obs")
    summary = starter.run()
    assert np.isfinite(summary.final_eval_return)
    row = (summary.run_dir / "progress.csv").read_text().splitlines()
    header = row[0].split(",")
    for column in ("disc_loss", "expert_logit", "policy_logit", "expert_accuracy", "policy_accuracy",
                   "imitation_reward", "absorbing_logit", "q_mean"):
        assert column in header
    assert (summary.run_dir / "checkpoints").exists()
    saved = sorted(summary.run_dir.glob("checkpoints/*/models/discriminator.weights.h5"))
    assert saved


def test_default_discriminators_read_observations_and_actions_or_transitions(demos):
    for algo, P, inputs in ((GAIL, GAILParameters, ("obs", "action")), (AMP, AMPParameters, ("obs", "next_obs"))):
        starter = RLTaskStarter("Pendulum-v1", None, algo, small(P, demos), progress=False)
        assert starter.models["discriminator"].input_names == inputs
        starter.close()
    starter = RLTaskStarter("Pendulum-v1", None, AIRL, small(AIRLParameters, demos), progress=False)
    assert starter.models["shaping"].input_names == ("obs",)
    assert set(starter.algo.model_params(starter.state)) == {"actor", "qf1", "qf2", "discriminator", "shaping"}
    starter.close()


def test_amp_mixes_task_and_style_rewards(demos):
    starter = RLTaskStarter("Pendulum-v1", None, AMP, small(AMPParameters, demos, task_reward_weight=0.25,
                                                              style_reward_weight=2.0), progress=False)
    task, style = jnp.asarray([-1.0, -2.0]), jnp.asarray([0.5, 1.0])
    np.testing.assert_allclose(starter.algo.mix_task_reward(task, style), [0.75, 1.5])
    starter.close()


def test_airl_logit_is_shaped_reward_minus_log_pi(demos):
    from scipy.stats import norm

    starter = RLTaskStarter("Pendulum-v1", None, AIRL, small(AIRLParameters, demos), progress=False)
    algo, state = starter.algo, starter.state
    batch = jax.tree_util.tree_map(lambda x: x[0], synthetic_batches(np.random.default_rng(2), 1, 6, None)(0.5))
    f = np.asarray(algo.shaped_reward(state.disc, batch))
    g_spec, h_spec = algo.disc_specs["discriminator"], algo.disc_specs["shaping"]
    g = np.asarray(g_spec.fn.apply(state.disc["discriminator"], {"obs": batch["obs"]["obs"], "action": batch["action"]}))[:, 0]
    h = np.asarray(h_spec.fn.apply(state.disc["shaping"], {"obs": batch["obs"]["obs"]}))[:, 0]
    h2 = np.asarray(h_spec.fn.apply(state.disc["shaping"], {"obs": batch["next_obs"]["obs"]}))[:, 0]
    np.testing.assert_allclose(f, g + 0.99 * (1 - batch["terminated"]) * h2 - h, rtol=1e-5, atol=1e-6)
    actor = state.gen.actor
    mean, log_std = algo.policy.dist(actor, algo.policy.outputs(actor["net"], batch["obs"]))
    # log pi(a|s) of the squashed Gaussian: log N(atanh a; mean, std) - log(1 - a^2)
    a = batch["action"][:, 0].astype(np.float64)
    log_pi = norm.logpdf(np.arctanh(a), np.asarray(mean)[:, 0], np.exp(np.asarray(log_std)[:, 0])) - np.log(1 - a ** 2)
    np.testing.assert_allclose(algo.disc_logits(state.disc, state.gen, batch), f - log_pi, rtol=1e-4, atol=1e-5)
    starter.close()


# -- recurrent discriminators and sequence training -------------------------------------------------
def recurrent_gail(demos, root=None, **kw):
    from aquaml.env import PositionOnlyEnv

    params = small(GAILParameters, demos, sequence_length=4, burn_in=1, batch_size=16, **kw)
    where = {"run_root": root} if root is not None else {}
    return RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"discriminator": LSTMDiscriminator}, GAIL, params,
                         progress=False, **where)


def test_a_recurrent_discriminator_unrolls_windows_from_zero_state_reset_at_episode_starts(demos):
    starter = recurrent_gail(demos)
    algo, state = starter.algo, starter.state
    spec = algo.disc_specs["discriminator"]
    rng = np.random.default_rng(4)
    B, L = 3, 5
    pos = rng.normal(size=(B, L, 2)).astype(np.float32)
    action = rng.uniform(-1, 1, (B, L, 1)).astype(np.float32)
    truncated = np.zeros((B, L), np.float32)
    truncated[1, 2] = 1.0  # window 1: a new episode starts at step 3
    batch = {"obs": {"pos": pos}, "next_obs": {"pos": pos}, "action": action, "reward": np.zeros((B, L), np.float32),
             "terminated": np.zeros((B, L), np.float32), "truncated": truncated, "mask": np.ones((B, L), np.float32)}
    got = np.asarray(algo.disc_logits(state.disc, state.gen, batch))
    want = np.zeros((B, L))
    for b in range(B):  # the model stepped by hand
        h = c = np.zeros((1, 8), np.float32)
        for t in range(L):
            if t > 0 and truncated[b, t - 1]:
                h = c = np.zeros((1, 8), np.float32)
            logit, h, c = spec.fn.apply(state.disc["discriminator"], {"pos": pos[b, t][None], "action": action[b, t][None],
                                                                      "disc_h": h, "disc_c": c})
            want[b, t] = float(np.asarray(logit).reshape(()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # burn-in and padding carry no loss: the weights, and a padded last step's input changes nothing
    batch["mask"][2, 4] = 0.0
    np.testing.assert_array_equal(algo.loss_weights(batch), batch["mask"] * (np.arange(L) >= 1))
    loss = algo._disc_loss((state.disc, state.absorbing_logit), state.gen, batch, batch)[0]
    changed = {**batch, "action": action.copy()}
    changed["action"][2, 4] = -changed["action"][2, 4] + 0.5
    assert np.isclose(loss, algo._disc_loss((state.disc, state.absorbing_logit), state.gen, changed, changed)[0],
                      rtol=1e-6)
    starter.close()


@pytest.mark.slow
def test_recurrent_discriminators_and_actors_train_on_windows_and_resume_exactly(demos, tmp_path):
    def make(epochs, root, **kw):
        return recurrent_gail(demos, root, n_epochs=epochs, lstm_size=8)

    full, run_dir = assert_resumes_exactly(make, 4, 80, tmp_path)
    assert np.isfinite(full.final_eval_return)
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert "expert_accuracy" in header and "imitation_reward" in header


def test_recurrent_models_in_adversarial_imitation_need_windows(demos):
    from aquaml.env import PositionOnlyEnv

    with pytest.raises(ValueError, match="LSTMDiscriminator is recurrent: set sequence_length"):
        RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"discriminator": LSTMDiscriminator}, GAIL,
                      small(GAILParameters, demos), progress=False)
    with pytest.raises(ValueError, match="recurrent discriminators train with the SAC generator"):
        RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"discriminator": LSTMDiscriminator}, GAILPPO,
                      small_ppo(GAILPPOParameters, demos), progress=False)
    with pytest.raises(ValueError, match="AIRL's logit needs log pi"):
        AIRLParameters(sequence_length=4, lstm_size=4)
    with pytest.raises(ValueError, match="airl: the actor model .* is recurrent"):
        RLTaskStarter("Pendulum-v1", None, AIRL, small(AIRLParameters, demos, lstm_size=4), progress=False)


def test_expert_windows_run_across_episode_ends_as_the_agents_do(demos):
    starter = recurrent_gail(demos)
    expert, ends = starter.learner.expert, np.cumsum(starter.dataset.lengths) - 1
    assert (expert["truncated"][ends] | expert["terminated"][ends]).all()  # every episode end resets
    # windows that begin one step before an episode end carry on into the next episode
    from aquaml.data.windows import episode_windows

    learner = starter.learner
    windows = episode_windows(learner.expert, learner.last_step, ends[:2] - 1, 4)
    assert windows["mask"].all()
    np.testing.assert_array_equal(windows["truncated"][:, 1], 1)
    np.testing.assert_array_equal(windows["obs/pos"][:, 2], learner.expert["obs/pos"][ends[:2] + 1])
    starter.close()


# -- PPO generators ------------------------------------------------------------------------------
def small_ppo(P, demos, **kw):
    base = dict(dataset=demos, n_epochs=3, n_envs=2, rollout_length=16, batch_size=8, n_update_epochs=2,
                hidden_sizes=(16,), display_interval=1, calculate_episodes=1, episode_length=30)
    return P(**{**base, **kw})


def synthetic_rollout(rng, T, N, terminated_share=0.1):
    obs = rng.normal(size=(T, N, 3)).astype(np.float32)
    action = rng.uniform(-1, 1, (T, N, 1)).astype(np.float32)
    return {"obs": {"obs": obs}, "next_obs": {"obs": obs + 0.1}, "action": action,
            "reward": rng.normal(size=(T, N)).astype(np.float32),
            "terminated": (rng.random((T, N)) < terminated_share).astype(np.float32),
            "truncated": np.zeros((T, N), np.float32),
            "extras": {"raw_action": action, "log_prob": np.zeros((T, N), np.float32)}}


def test_ppo_generators_train_the_discriminator_on_rollout_minibatches_then_learn_its_reward(demos):
    """``update(state, (rollout, index, expert))``: the discriminator steps over the rollout's
    minibatches in ``index`` order, each against its expert batch; the generator then learns
    from the updated discriminator's reward on every step (absorbing share at terminations)."""
    params = small_ppo(GAILPPOParameters, demos, discriminator_epochs=2, discriminator_learning_rate=0.01)
    starter = RLTaskStarter("Pendulum-v1", None, GAILPPO, params, progress=False)
    algo, state = starter.algo, starter.state
    rng = np.random.default_rng(0)
    rollout = synthetic_rollout(rng, 16, 2)
    index = np.stack([rng.permutation(32) for _ in range(2)]).reshape(8, 8)  # 2 epochs of 4 minibatches
    expert = jax.tree_util.tree_map(lambda x: x[0], synthetic_batches(rng, 1, 64, None)(0.0))
    expert = jax.tree_util.tree_map(lambda x: x.reshape(8, 8, *x.shape[1:]), expert)
    new_state, metrics = algo.update(state, (rollout, index, expert))
    # the same discriminator steps taken one by one
    steps = jax.tree_util.tree_map(lambda x: x.reshape(32, *x.shape[2:]), rollout)
    manual = state
    for k in range(8):
        policy = jax.tree_util.tree_map(lambda v: v[index[k]], steps)
        disc, opt, absorbing, _ = algo._disc_step(manual, policy, jax.tree_util.tree_map(lambda v: v[k], expert))
        manual = manual._replace(disc=disc, disc_opt=opt, absorbing_logit=absorbing)
    for a, b in zip(jax.tree_util.tree_leaves(manual.disc), jax.tree_util.tree_leaves(new_state.disc)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    logit = np.asarray(algo.disc_logits(manual.disc, state.gen, steps))
    bonus = steps["terminated"] * absorbing_state_value(float(manual.absorbing_logit), 0.99)
    np.testing.assert_allclose(metrics["imitation_reward"], np.mean(logit + bonus), rtol=1e-3, atol=1e-4)
    for key in ("disc_loss", "expert_accuracy", "policy_accuracy", "actor_loss", "value_loss", "approx_kl"):
        assert np.isfinite(metrics[key]), key
    # the generator's observation statistics track what its own models read, not the discriminator's inputs
    assert set(state.gen.obs_stats["mean"]) == {"obs"}
    starter.close()


def test_ppo_log_prob_of_and_airl_ppo_logit_match_scipy(demos):
    from scipy.stats import norm

    from aquaml.data import normalizer

    starter = RLTaskStarter("Pendulum-v1", None, AIRLPPO, small_ppo(AIRLPPOParameters, demos, log_std_init=-0.5),
                            progress=False)
    algo, state = starter.algo, starter.state
    rng = np.random.default_rng(3)
    stats = {"mean": {"obs": jnp.asarray([0.5, -0.2, 1.0])}, "var": {"obs": jnp.asarray([4.0, 0.25, 9.0])},
             "count": state.gen.obs_stats["count"] + 100.0}
    gen = state.gen._replace(obs_stats={**state.gen.obs_stats, **stats})
    batch = jax.tree_util.tree_map(lambda x: x[0], synthetic_batches(rng, 1, 6, None)(0.3))
    normalized = (batch["obs"]["obs"] - np.array([0.5, -0.2, 1.0])) / np.sqrt(np.array([4.0, 0.25, 9.0]) + 1e-8)
    normalized = np.clip(normalized, -normalizer.CLIP, normalizer.CLIP).astype(np.float32)
    (mean,) = algo.models["actor"].fn.apply(gen.actor["net"], {"obs": normalized})
    want = norm.logpdf(batch["action"][:, 0], np.asarray(mean)[:, 0], np.exp(-0.5))
    np.testing.assert_allclose(algo.log_prob_of(gen, batch["obs"], batch["action"]), want, rtol=1e-3, atol=1e-3)
    f = np.asarray(algo.shaped_reward(state.disc, batch))
    np.testing.assert_allclose(algo.disc_logits(state.disc, gen, batch), f - want, rtol=1e-3, atol=1e-3)
    # PPO learns from AIRL's whole logit (SAC's entropy bonus stands in for -log pi; PPO has none)
    np.testing.assert_allclose(algo.generator_reward(state.disc, gen, batch, jnp.asarray(f - want)), f - want,
                               rtol=1e-6)
    starter.close()


def test_discrete_actions_reach_the_discriminator_one_hot(tmp_path):
    from aquaml.algorithm.adversarial import discriminator_inputs

    demos = cartpole_demos(tmp_path / "cartpole.npz")
    starter = RLTaskStarter("CartPole-v1", None, GAILPPO, small_ppo(GAILPPOParameters, demos, episode_length=None),
                            run_root=tmp_path, progress=False)
    spec = starter.models["discriminator"]
    assert spec.input_shapes["action"] == (2,)
    batch = {"obs": {"obs": np.zeros((3, 4), np.float32)}, "next_obs": {}, "reward": np.zeros(3, np.float32),
             "action": np.array([1, 0, 1])}
    np.testing.assert_array_equal(discriminator_inputs(spec, batch)["action"], [[0, 1], [1, 0], [0, 1]])
    assert np.isfinite(starter.run().final_eval_return)
    starter.close()
    # AIRL's log pi of one-hot actions (the gradient penalty differentiates through them)
    airl = RLTaskStarter("CartPole-v1", None, AIRLPPO, small_ppo(AIRLPPOParameters, demos, episode_length=None,
                                                                 gradient_penalty=1.0, n_epochs=2),
                         run_root=tmp_path, progress=False)
    one_hot = jax.nn.one_hot(jnp.asarray([1, 0]), 2)
    obs = {"obs": np.zeros((2, 4), np.float32)}
    np.testing.assert_allclose(airl.algo.log_prob_of(airl.state.gen, obs, one_hot),
                               airl.algo.log_prob_of(airl.state.gen, obs, jnp.asarray([1, 0])), rtol=1e-6)
    assert np.isfinite(airl.run().final_eval_return)
    airl.close()


def test_ppo_generators_take_user_discriminators(demos, tmp_path):
    starter = RLTaskStarter("Pendulum-v1", {"discriminator": StateOnlyDiscriminator}, GAILPPO,
                            small_ppo(GAILPPOParameters, demos, n_epochs=2), run_root=tmp_path, progress=False)
    assert starter.models["discriminator"].input_names == ("obs", "next_obs")
    summary = starter.run()
    assert np.isfinite(summary.final_eval_return)
    assert sorted(summary.run_dir.glob("checkpoints/*/models/discriminator.weights.h5"))
    starter.close()


def test_ppo_generators_resume_exactly_and_run_with_workers(demos, tmp_path):
    def make(epochs, root, **kw):
        return RLTaskStarter("Pendulum-v1", None, GAILPPO, small_ppo(GAILPPOParameters, demos, n_epochs=epochs),
                             run_root=root, progress=False, **kw)

    full, _ = assert_resumes_exactly(make, 4, 128, tmp_path)
    workers = make(4, tmp_path / "workers", n_workers=2)
    assert workers.run().eval_history == full.eval_history
    workers.close()


# -- runs: resume, workers, CLI, bad input -------------------------------------------------------
def test_gail_resumes_exactly_and_runs_with_workers(demos, tmp_path):
    def make(epochs, root, **kw):
        return RLTaskStarter("Pendulum-v1", None, GAIL, small(GAILParameters, demos, n_epochs=epochs), run_root=root,
                             progress=False, **kw)

    full, _ = assert_resumes_exactly(make, 4, 80, tmp_path)
    workers = make(4, tmp_path / "workers", n_workers=1)
    assert workers.run().eval_history == full.eval_history  # the same run with a sampler process
    workers.close()


def test_cli_trains_adversarial_imitation(demos, tmp_path, capsys):
    from aquaml.cli import main

    for algo in ("gail", "airl", "amp"):
        code = main(["train", algo, "Pendulum-v1", "--steps", "60", "--set", f"dataset={demos}",
                     "--set", "update_interval=20", "--set", "update_times=2", "--set", "batch_size=16",
                     "--set", "mini_buffer_size=20", "--set", "hidden_sizes=8", "--set", "calculate_episodes=1",
                     "--set", "episode_length=20", "--run-root", str(tmp_path)])
        assert code == 0
        assert "final evaluation return:" in capsys.readouterr().out
    for algo in ("gail", "airl"):  # the PPO generator
        code = main(["train", algo, "Pendulum-v1", "--steps", "64", "--set", "generator=ppo", "--set",
                     f"dataset={demos}", "--set", "n_envs=2", "--set", "rollout_length=16", "--set", "batch_size=8",
                     "--set", "hidden_sizes=8", "--set", "calculate_episodes=1", "--set", "episode_length=20",
                     "--run-root", str(tmp_path), "--name", f"{algo}_ppo"])
        assert code == 0
        assert "final evaluation return:" in capsys.readouterr().out
        config = (tmp_path / f"{algo}_ppo").glob("*/config.json")
        assert f'"{algo}_ppo"' in next(config).read_text()
    run_dir = next((tmp_path / "gail_ppo").glob("*/config.json")).parent
    assert main(["train", "gail", "Pendulum-v1", "--resume", str(run_dir), "--steps", "96"]) == 0  # as started
    capsys.readouterr()
    assert main(["train", "gail", "Pendulum-v1", "--set", "generator=td3", "--set", f"dataset={demos}"]) == 2
    assert "generator 'td3' for gail; use one of sac, ppo" in capsys.readouterr().err
    assert main(["train", "sac", "Pendulum-v1", "--set", "generator=ppo"]) == 2
    assert "sac has no generator option" in capsys.readouterr().err


def test_bad_adversarial_input_fails_before_training(demos, tmp_path):
    from aquaml.env import PositionOnlyEnv

    with pytest.raises(ValueError, match="gail learns from a dataset: set dataset=PATH"):
        RLTaskStarter("Pendulum-v1", None, GAIL, small(GAILParameters, ""), progress=False)
    bare = save_data(tmp_path / "bare.npz", pendulum_dataset(episodes=1))

    class PosDiscriminator(StateOnlyDiscriminator):
        def __init__(self):
            super().__init__()
            self.input_name = ("pos", "next_pos")

        def call(self, pos, next_pos):
            return self.out(self.d1(keras.ops.concatenate([pos, next_pos], axis=-1)))

    with pytest.raises(DatasetError, match="lacks observation 'pos' that the discriminator model reads"):
        RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"discriminator": PosDiscriminator}, GAIL,
                      small(GAILParameters, str(bare)), progress=False)
    with pytest.raises(ValueError, match="reward = 'bonus'"):
        GAILParameters(reward="bonus")


def test_airls_learned_reward_trains_a_fresh_agent(demos, tmp_path):
    from aquaml import SACParameters
    from aquaml.env import LearnedReward
    from aquaml.starter import load_reward, load_run

    airl = RLTaskStarter("Pendulum-v1", None, AIRL, small(AIRLParameters, demos), run_root=tmp_path, progress=False)
    run_dir = airl.run().run_dir
    airl.close()
    env = LearnedReward("Pendulum-v1", load_reward(run_dir))
    obs, _ = env.reset(seed=3)
    action = np.array([1.0], np.float32)
    next_obs, reward, _, _, info = env.step(action)
    run = load_run(run_dir)
    g_fn = lambda o, a: np.asarray(run.agent.models["discriminator"].fn.apply(  # noqa: E731
        run.state.disc["discriminator"], {"obs": o.astype(np.float32), "action": a.astype(np.float32)})).reshape(-1)
    # scale: one over g's std on what the run learned from (its replay buffer and the expert data)
    from aquaml.data import load_dataset
    from aquaml.starter import replay_dataset

    seen = [replay_dataset(run_dir).transitions(), load_dataset(demos).transitions()]
    g_seen = np.concatenate([g_fn(t["obs/obs"], t["action"]) for t in seen])
    np.testing.assert_allclose(env.scale, 1 / np.std(g_seen), rtol=1e-4)
    want = env.scale * g_fn(obs[None], np.array([[0.5]]))[0]  # action 1.0 of [-2, 2] is 0.5
    np.testing.assert_allclose(reward, want, rtol=1e-5)
    assert LearnedReward("Pendulum-v1", load_reward(run_dir, scale=2.0)).scale == 2.0
    with pytest.raises(ValueError, match="scale must be 'auto' or a positive number"):
        load_reward(run_dir, scale=-1)
    assert "env_reward" in info and info["env_reward"] != reward
    params = SACParameters(n_epochs=2, update_interval=20, update_times=2, batch_size=16, mini_buffer_size=20,
                           hidden_sizes=(8,), display_interval=2, calculate_episodes=1, episode_length=20)
    fresh = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=tmp_path / "fresh", progress=False,
                          reward_model=run_dir)
    summary = fresh.run()
    # training episodes earn the learned reward, evaluations the task's own
    assert isinstance(fresh.agent.env.env, LearnedReward)
    assert not isinstance(fresh.evaluator.driver.env.env, LearnedReward)
    assert np.isfinite(summary.final_eval_return)
    fresh.close()
    config = json.loads((summary.run_dir / "config.json").read_text())
    assert config["reward_model"] == str(run_dir.resolve())
    resumed = RLTaskStarter.from_run_dir(summary.run_dir, steps=80, progress=False)
    assert resumed.reward_model == str(run_dir.resolve())
    assert isinstance(resumed._training_env()(), LearnedReward)  # what MPI sampler ranks serve too
    resumed.close()
    from aquaml.cli import main

    assert main(["train", "sac", "Pendulum-v1", "--steps", "40", "--reward-model", str(run_dir), "--set",
                 "update_interval=20", "--set", "mini_buffer_size=20", "--set", "batch_size=16", "--set",
                 "calculate_episodes=1", "--set", "episode_length=20", "--run-root", str(tmp_path / "cli")]) == 0
    with pytest.raises(ValueError, match="reward_model replaces an environment's reward; gail learns from a dataset"):
        RLTaskStarter("Pendulum-v1", None, GAIL, small(GAILParameters, demos), progress=False, reward_model=run_dir)
