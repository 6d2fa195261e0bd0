"""The learning tests' runs, and the spread of their scores over seeds on this machine.

The learning tests (``tests/test_learning.py``, ``tests/test_imitation_learning.py``) build their
runs from the functions here, so the thresholds they assert come from the same settings this
script measures:

    python benchmarks/spread.py sac_pendulum --seeds 0,1,2,3,4 --evals 8

prints every seed's evaluation history, the mean of its last ``--last`` evaluations (the
statistic the tests assert) and the first env step (or gradient step, offline) at which an
evaluation reached the test's threshold. Runs of the Pendulum imitation tasks use the expert,
demonstrations and medium-replay data of ``benchmarks/pendulum_data.py``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from aquaml import RLTaskStarter, SACParameters
from aquaml.algorithm import SAC


class Run(NamedTuple):
    env: object
    algo: type
    params: object
    models: dict | None = None


def sac_pendulum(seed: int, steps: int = 20_000, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """SAC on Pendulum-v1: bursts of 50 env steps and 50 gradient steps, 64x64, lr 1e-3."""
    epochs = steps // 50
    return Run("Pendulum-v1", SAC, SACParameters(
        n_epochs=epochs, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=epochs // evals, calculate_episodes=calculate_episodes, seed=seed))


def slow_sac_pendulum() -> SACParameters:
    """The medium-replay recipe's learner (``recipes.stopped_replay``): SAC taking 5 gradient steps per
    50 env steps at lr 3e-4, so its buffer holds many episodes of every quality on the way."""
    return SACParameters(n_epochs=2000, update_interval=50, update_times=5, batch_size=256, learning_rate=3e-4,
                         hidden_sizes=(64, 64), display_interval=10, calculate_episodes=10, seed=1,
                         store_model_times=10**6)


def td3_pendulum(seed: int, steps: int = 20_000, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """TD3 with SAC's settings above."""
    from aquaml.algorithm import TD3, TD3Parameters

    epochs = steps // 50
    return Run("Pendulum-v1", TD3, TD3Parameters(
        n_epochs=epochs, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=epochs // evals, calculate_episodes=calculate_episodes, seed=seed))


def ppo_cartpole(seed: int, steps: int = 99_328, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """PPO on CartPole-v1: 8 envs x 128 steps per rollout, minibatches of 256, 10 epochs."""
    from aquaml.algorithm import PPO, PPOParameters

    epochs = steps // 1024
    return Run("CartPole-v1", PPO, PPOParameters(
        n_epochs=epochs, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
        display_interval=max(1, epochs // evals), calculate_episodes=calculate_episodes, seed=seed))


def offline(name: str, dataset: str, seed: int, steps: int = 10_000, evals: int = 2,
            calculate_episodes: int = 10, hidden_sizes: tuple[int, ...] = (256, 256)) -> Run:
    """``bc``, ``iql`` or ``td3bc`` on a Pendulum dataset, 1,000 gradient steps per epoch (TD3+BC's
    alpha 40: Pendulum's returns are large and negative, so alpha / mean|Q| is small and the
    default 2.5 stays close to cloning)."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[name]
    epochs = steps // 1000
    extra = {"alpha": 40.0} if name == "td3bc" else {}
    return Run("Pendulum-v1", algo, algo.Parameters(
        dataset=dataset, n_epochs=epochs, update_times=1000, display_interval=max(1, epochs // evals),
        calculate_episodes=calculate_episodes, hidden_sizes=hidden_sizes, seed=seed, **extra))


def ppo_generator(name: str, dataset: str, seed: int, steps: int = 100_352, evals: int = 2,
                  calculate_episodes: int = 10) -> Run:
    """``gail_ppo`` or ``airl_ppo`` from 10 expert episodes: 8 envs x 256 steps per rollout, RL Zoo's
    Pendulum settings (discount 0.9, learning rate 1e-3), initial log-std -1."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[name]
    epochs = steps // 2048
    return Run("Pendulum-v1", algo, algo.Parameters(
        dataset=dataset, max_episodes=10, n_envs=8, rollout_length=256, batch_size=256, discount=0.9,
        learning_rate=1e-3, log_std_init=-1.0, n_epochs=epochs, display_interval=max(1, epochs // evals),
        calculate_episodes=calculate_episodes, seed=seed))


def train(run: Run, run_root: str | Path, name: str | None = None):
    """Train ``run`` without a progress bar; returns its summary."""
    starter = RLTaskStarter(run.env, run.models, run.algo, run.params, name=name, run_root=run_root, progress=False)
    try:
        return starter.run()
    finally:
        starter.close()


def last_mean(summary, k: int) -> float:
    """The statistic the learning tests assert: the mean of the last ``k`` evaluations."""
    return float(np.mean([r for _, r in summary.eval_history[-k:]]))


# name -> (threshold, whether it is on the normalised return, run builder taking (seed, steps or 0, evals))
def _tasks(data) -> dict[str, tuple[float, bool, Callable[..., Run]]]:
    demos, replay = str(data.expert_demos) if data else "", str(data.medium_replay) if data else ""
    return {
        "sac_pendulum": (-200, False, lambda s, n, e: sac_pendulum(s, n or 20_000, e)),
        "td3_pendulum": (-200, False, lambda s, n, e: td3_pendulum(s, n or 20_000, e)),
        "ppo_cartpole": (475, False, lambda s, n, e: ppo_cartpole(s, n or 99_328, e)),
        "iql_medium_replay": (0.7, True, lambda s, n, e: offline("iql", replay, s, n or 10_000, e)),
        "td3bc_medium_replay": (0.7, True, lambda s, n, e: offline("td3bc", replay, s, n or 10_000, e)),
        "bc_medium_replay": (0.7, True, lambda s, n, e: offline("bc", replay, s, n or 10_000, e)),
        "iql_medium_replay_64": (0.7, True, lambda s, n, e: offline("iql", replay, s, n or 10_000, e, hidden_sizes=(64, 64))),
        "td3bc_medium_replay_64": (0.7, True, lambda s, n, e: offline("td3bc", replay, s, n or 10_000, e, hidden_sizes=(64, 64))),
        "gail_ppo": (0.75, True, lambda s, n, e: ppo_generator("gail_ppo", demos, s, n or 100_352, e)),
        "airl_ppo": (0.6, True, lambda s, n, e: ppo_generator("airl_ppo", demos, s, n or 100_352, e)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", help="one of: " + ", ".join(_tasks(None)))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=0, help="env steps (gradient steps offline); 0: the test's")
    parser.add_argument("--evals", type=int, default=8, help="evaluations per run")
    parser.add_argument("--last", type=int, default=2, help="evaluations averaged")
    args = parser.parse_args()
    data = None
    scratch = Path(tempfile.mkdtemp())
    if args.task not in ("sac_pendulum", "td3_pendulum", "ppo_cartpole"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pendulum_data import pendulum_data

        data = pendulum_data(scratch)
    threshold, normalised, build = _tasks(data)[args.task]
    score = data.normalized if normalised else float
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        run = build(seed, args.steps, args.evals)
        start = time.perf_counter()
        summary = train(run, scratch / "runs")
        took = time.perf_counter() - start
        history = [(step, round(score(r), 3)) for step, r in summary.eval_history]
        first = next((step for step, r in history if r >= threshold), None)
        stat = score(last_mean(summary, args.last))
        rows.append(stat)
        print(json.dumps({"task": args.task, "seed": seed, "seconds": round(took, 1), "history": history,
                          f"last{args.last}": round(stat, 3), "first_at_threshold": first}), flush=True)
    print(f"{args.task}: mean of last {args.last} over seeds: min {min(rows):.3f}, mean {np.mean(rows):.3f}, "
          f"max {max(rows):.3f} (threshold {threshold})")


if __name__ == "__main__":
    main()
