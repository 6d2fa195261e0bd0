"""Adversarial imitation (GAIL, AIRL, AMP): losses and rewards against numpy, episode ends that
leak no reward, named discriminator inputs, exact resume, workers, the CLI and bad input."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from aquaml import RLTaskStarter
from aquaml.algorithm import AIRL, AMP, GAIL, AIRLParameters, AMPParameters, GAILParameters
from aquaml.algorithm.adversarial import absorbing_bonus, expert_loss, imitation_reward, policy_loss
from aquaml.data import DatasetError, save_data
from helpers import assert_resumes_exactly
from test_offline import pendulum_dataset


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    return str(save_data(tmp_path_factory.mktemp("demos") / "demos.npz", pendulum_dataset(episodes=3, with_pos=True)))


def small(P, demos, **kw):
    base = dict(dataset=demos, n_epochs=4, update_interval=20, update_times=5, batch_size=32, mini_buffer_size=40,
                hidden_sizes=(16,), display_interval=2, calculate_episodes=1, episode_length=30)
    return P(**{**base, **kw})


# -- losses and rewards against numpy ----------------------------------------------------------
def test_discriminator_losses_and_rewards_match_numpy():
    logit = np.linspace(-4, 4, 9).astype(np.float32)
    sig = 1 / (1 + np.exp(-logit.astype(np.float64)))
    np.testing.assert_allclose(expert_loss("bce", jnp.asarray(logit)), -np.log(sig), rtol=1e-5)
    np.testing.assert_allclose(policy_loss("bce", jnp.asarray(logit)), -np.log(1 - sig), rtol=1e-5)
    np.testing.assert_allclose(expert_loss("least_squares", jnp.asarray(logit)), (logit - 1) ** 2, rtol=1e-6)
    np.testing.assert_allclose(policy_loss("least_squares", jnp.asarray(logit)), (logit + 1) ** 2, rtol=1e-6)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "logit"), np.log(sig) - np.log(1 - sig),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "positive"), -np.log(1 - sig), rtol=1e-5)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "negative"), np.log(sig), rtol=1e-5)
    np.testing.assert_allclose(imitation_reward(jnp.asarray(logit), "amp"),
                               np.maximum(0, 1 - 0.25 * (logit - 1) ** 2), rtol=1e-6)


def test_absorbing_bonus_reaches_terminal_transitions_only():
    terminated = jnp.asarray([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(absorbing_bonus(terminated, jnp.float32(-0.5), 0.99),
                               [0, 0.99 * -0.5 / 0.01, 0, 0.99 * -0.5 / 0.01], rtol=1e-5)


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
    from aquaml.model.distributions import squashed_gaussian_log_prob

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
    outputs = algo.policy.outputs(actor["net"], batch["obs"])
    mean, log_std = algo.policy.dist(actor, outputs)
    log_pi = squashed_gaussian_log_prob(jnp.arctanh(batch["action"]), mean, log_std)
    np.testing.assert_allclose(algo.disc_logits(state.disc, state.gen, batch), f - np.asarray(log_pi), rtol=1e-4,
                               atol=1e-5)
    starter.close()


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
    with pytest.raises(ValueError, match="sequence training of the generator is not available"):
        GAILParameters(sequence_length=4, lstm_size=4)


def test_airls_learned_reward_trains_a_fresh_agent(demos, tmp_path):
    from aquaml import SACParameters
    from aquaml.env import LearnedReward
    from aquaml.starter.evaluation import load_state

    airl = RLTaskStarter("Pendulum-v1", None, AIRL, small(AIRLParameters, demos), run_root=tmp_path, progress=False)
    run_dir = airl.run().run_dir
    airl.close()
    env = LearnedReward("Pendulum-v1", run_dir)
    obs, _ = env.reset(seed=3)
    action = np.array([1.0], np.float32)
    next_obs, reward, _, _, info = env.step(action)
    agent, state, _ = load_state(run_dir)
    g = agent.models["discriminator"].fn.apply(state.disc["discriminator"],
                                                {"obs": obs[None].astype(np.float32), "action": np.array([[0.5]])})
    np.testing.assert_allclose(reward, float(np.asarray(g).reshape(())), rtol=1e-5)  # action 1.0 of [-2, 2] is 0.5
    assert "env_reward" in info and info["env_reward"] != reward
    params = SACParameters(n_epochs=2, update_interval=20, update_times=2, batch_size=16, mini_buffer_size=20,
                           hidden_sizes=(8,), display_interval=2, calculate_episodes=1, episode_length=20)
    fresh = RLTaskStarter(lambda: LearnedReward("Pendulum-v1", run_dir), algo_hyperparameter=params,
                          run_root=tmp_path, progress=False)
    assert np.isfinite(fresh.run().final_eval_return)
    fresh.close()
