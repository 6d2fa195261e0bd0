"""Learning tests: SAC must actually solve Pendulum-v1 (RL Zoo reports -157 at 20k steps)."""
import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters
from benchmarks.learning_runs import last_mean, ppo_cartpole, sac_pendulum, td3_pendulum, train


# Eight evaluations of 10 episodes per run; asserted: the mean of the last two (17.5k and 20k steps), which
# a single unstable evaluation cannot decide (TD3 seed 2 fell to -656 at 15k, -142 and -141 around it).
# Measured on the 2-core AVX-512 machine (benchmarks/spread.py {sac,td3}_pendulum --seeds 0,1,2,3,4 --evals 8):
#   sac: -142.5, -120.3, -131.9, -135.6, -188.8        td3: -150.9, -121.9, -141.5, -140.9, -190.3
# Two seeds each: every one of the five measured passes, so a third adds time, not a check (on
# another CPU a seed is another draw from this spread; the worst of five is still inside -200)
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("task", [sac_pendulum, td3_pendulum], ids=["sac", "td3"])
def test_solves_pendulum_within_20k_steps(task, seed, run_root):
    summary = train(task(seed, 20_000, evals=8), run_root)
    print(f"{task.__name__} seed {seed}: eval history {summary.eval_history}")
    assert summary.env_steps == 20_000 and len(summary.eval_history) == 8
    assert last_mean(summary, 2) >= -200, summary.eval_history


# PPO on CartPole swings between evaluations until late (seed 0: 500 at 74k steps, 285 at 86k, 500 at 98k):
# asserted is the mean of the last two of eight evaluations (98,304 and 99,328 steps); measured
# (benchmarks/spread.py ppo_cartpole --seeds 0,1,2,3,4 --evals 8): 500 for every seed, so two are run
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_solves_cartpole_within_100k_steps(seed, run_root):
    summary = train(ppo_cartpole(seed, 99_328, evals=8), run_root)
    print(f"seed {seed}: eval history {summary.eval_history}")
    assert summary.env_steps == 99_328
    assert last_mean(summary, 2) >= 475, summary.eval_history


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
    """The seed's POMDP example: LSTM actor on positions, critics on the full state, 15k steps each;
    asserted: the mean of the last two evaluations (10k and 15k steps). Measured (Keras seed 0, every
    5k steps to 20k): LSTM seeds 0-2: -347, -173, -146, -147; -632, -124, -123, -127; -139, -134, -132,
    -133 (means at 10k-15k: -160, -123, -133); feed-forward seeds 0-1: -1105, -1043, -1147, -1349 and
    -1025, -1296, -1251, -1207."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))  # undone after the test
    from recurrent_sac_pendulum_pos import main

    recurrent = main(seed=0, steps=15_000, sequence_length=16, run_root=str(run_root))
    mlp = main(seed=0, steps=15_000, sequence_length=0, run_root=str(run_root))
    print(f"recurrent {recurrent.eval_history}, feed-forward {mlp.eval_history}")
    assert len(recurrent.eval_history) == len(mlp.eval_history) == 3
    assert last_mean(recurrent, 2) >= -220 and last_mean(mlp, 2) < -500


@pytest.mark.slow
def test_sac_with_overlapping_workers_solves_pendulum_within_20k_steps(run_root):
    """2 worker processes, collection overlapping the updates, double-buffered acting."""
    params = SACParameters(n_epochs=400, n_envs=2, update_interval=25, update_times=50, batch_size=256,
                           learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=50,
                           calculate_episodes=10, seed=0, overlap=True)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=run_root, progress=False,
                            n_workers=2)
    summary = starter.run()
    starter.close()
    print(f"eval history {summary.eval_history}")
    assert summary.env_steps == 20_000
    assert last_mean(summary, 2) >= -200, summary.eval_history  # as the in-process runs above


@pytest.mark.slow
def test_ppo_with_double_buffered_workers_solves_cartpole_within_100k_steps(run_root):
    from aquaml.algorithm import PPO

    params = ppo_cartpole(0, 99_328, evals=8).params.replace(overlap=True)
    starter = RLTaskStarter("CartPole-v1", algo=PPO, algo_hyperparameter=params, run_root=run_root,
                            progress=False, n_workers=2)
    summary = starter.run()
    starter.close()
    print(f"eval history {summary.eval_history}")
    assert last_mean(summary, 2) >= 475, summary.eval_history
