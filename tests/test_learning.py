"""Learning tests: SAC must actually solve Pendulum-v1 (RL Zoo reports -157 at 20k steps)."""
import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sac_solves_pendulum_within_20k_steps(seed, run_root):
    params = SACParameters(n_epochs=400, update_interval=50, update_times=50, batch_size=256,
                           learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=100,
                           calculate_episodes=10, seed=seed)
    summary = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=run_root, progress=False).run()
    assert summary.env_steps == 20_000
    print(f"seed {seed}: eval history {summary.eval_history}")
    assert np.isfinite(summary.final_eval_return)
    assert summary.final_eval_return >= -200, summary.eval_history


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td3_solves_pendulum_within_20k_steps(seed, run_root):
    from aquaml.algorithm import TD3, TD3Parameters

    # 30 evaluation episodes: a deterministic policy's return on Pendulum depends strongly on
    # the start (one swing or two), so 10 episodes give a noisy mean
    params = TD3Parameters(n_epochs=400, update_interval=50, update_times=50, batch_size=256,
                           learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=100,
                           calculate_episodes=30, seed=seed)
    summary = RLTaskStarter("Pendulum-v1", algo=TD3, algo_hyperparameter=params, run_root=run_root,
                            progress=False).run()
    print(f"seed {seed}: eval history {summary.eval_history}")
    assert summary.env_steps == 20_000
    assert summary.final_eval_return >= -200, summary.eval_history


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_solves_cartpole_within_100k_steps(seed, run_root):
    from aquaml.algorithm import PPO, PPOParameters

    params = PPOParameters(n_epochs=97, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
                           display_interval=97, calculate_episodes=10, seed=seed)
    summary = RLTaskStarter("CartPole-v1", algo=PPO, algo_hyperparameter=params, run_root=run_root,
                            progress=False).run()
    print(f"seed {seed}: eval history {summary.eval_history}")
    assert summary.env_steps <= 100_000
    assert summary.final_eval_return >= 475, summary.eval_history


@pytest.mark.slow
def test_recurrent_ppo_beats_feed_forward_on_cartpole_without_velocities(run_root, monkeypatch):
    """Form 2 (LSTM actor, BPTT over 16-step windows) against default MLPs, 100k steps each."""
    from pathlib import Path

    from aquaml.algorithm import PPO, PPOParameters

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))  # undone after the test
    from recurrent_ppo_cartpole_novel import main

    # the last three evaluations (at 82k, 92k and 99k steps): a single final evaluation of a
    # recurrent policy oscillates (seed 0 on an AVX2 CPU: 499.5, 500, then 218.1)
    histories = [main(seed, 100_000, 16, run_root=str(run_root)).eval_history for seed in (0, 1)]
    recurrent = [np.mean([r for _, r in history[-3:]]) for history in histories]
    params = PPOParameters(n_epochs=97, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
                           display_interval=97, calculate_episodes=10, seed=0)
    mlp = RLTaskStarter("CartPoleNoVel-v1", algo=PPO, algo_hyperparameter=params, run_root=run_root,
                        progress=False).run().final_eval_return
    print(f"recurrent {histories}, feed-forward {mlp}")
    assert np.mean(recurrent) >= 400 and mlp < 100


@pytest.mark.slow
def test_recurrent_sac_beats_feed_forward_on_pendulum_positions(run_root, monkeypatch):
    """The seed's POMDP example: LSTM actor on positions, critics on the full state, 20k steps."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))  # undone after the test
    from recurrent_sac_pendulum_pos import main

    recurrent = main(seed=0, steps=20_000, sequence_length=16, run_root=str(run_root)).final_eval_return
    mlp = main(seed=0, steps=20_000, sequence_length=0, run_root=str(run_root)).final_eval_return
    print(f"recurrent {recurrent}, feed-forward {mlp}")
    assert recurrent >= -220 and mlp < -500


@pytest.mark.slow
def test_sac_with_overlapping_workers_solves_pendulum_within_20k_steps(run_root):
    """2 worker processes, collection overlapping the updates, double-buffered acting."""
    params = SACParameters(n_epochs=400, n_envs=2, update_interval=25, update_times=50, batch_size=256,
                           learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=100,
                           calculate_episodes=10, seed=0, overlap=True)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=run_root, progress=False,
                            n_workers=2)
    summary = starter.run()
    starter.close()
    print(f"eval history {summary.eval_history}")
    assert summary.env_steps == 20_000
    assert summary.final_eval_return >= -200, summary.eval_history


@pytest.mark.slow
def test_ppo_with_double_buffered_workers_solves_cartpole_within_100k_steps(run_root):
    from aquaml.algorithm import PPO, PPOParameters

    params = PPOParameters(n_epochs=97, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
                           display_interval=97, calculate_episodes=10, seed=0, overlap=True)
    starter = RLTaskStarter("CartPole-v1", algo=PPO, algo_hyperparameter=params, run_root=run_root,
                            progress=False, n_workers=2)
    summary = starter.run()
    starter.close()
    print(f"eval history {summary.eval_history}")
    assert summary.final_eval_return >= 475, summary.eval_history
