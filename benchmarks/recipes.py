"""D4RL-style dataset recipes, regenerated locally: random returns, and "medium-replay" (the
replay buffer of an RL run stopped once its evaluation reaches a chosen normalised score).

Normalised score = ``(R - R_random) / (R_expert - R_random)``; the tests (``from benchmarks.recipes
import ...``, run from the repository root) and ``benchmarks/offline_vs_d3rlpy.py`` use these
recipes on Pendulum-v1.
"""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from aquaml.algorithm.registry import builtin_algorithms
from aquaml.data import Dataset
from aquaml.env import action_metadata
from aquaml.sampler import EVAL_FIRST_EPISODE, episode_seed
from aquaml.sampler.collector import EVAL_STREAM
from aquaml.starter import Hook, RLTaskStarter


def random_returns(env_id: str, episodes: int, seed: int = 0, first_episode: int = EVAL_FIRST_EPISODE) -> np.ndarray:
    """Returns of uniformly random actions over seeded evaluation-stream episodes."""
    env, out = gym.make(env_id), []
    for e in range(episodes):
        env.reset(seed=episode_seed(seed, EVAL_STREAM, first_episode + e))
        env.action_space.seed(e)
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(r), terminated or truncated
        out.append(total)
    env.close()
    return np.asarray(out)


def stopped_replay(env_id: str, params, stop_at: float, expert_return: float, random_return: float,
                   run_root: str | Path) -> tuple[Dataset, float, int]:
    """Train ``params`` (SAC or TD3 parameters) on ``env_id`` until an evaluation reaches the
    normalised score ``stop_at``; returns ``(its replay buffer as episodes, the score reached,
    env steps)``. Raises if the run ends first."""
    def normalized(r: float) -> float:
        return (r - random_return) / (expert_return - random_return)

    class StopThere(Hook):
        def on_display(self, loop, row):
            if normalized(row["eval_return_mean"]) >= stop_at:
                loop.request_stop()

    algo = next(cls for cls in builtin_algorithms().values() if isinstance(params, cls.Parameters))
    starter = RLTaskStarter(env_id, None, algo, params, run_root=run_root, progress=False, hooks=[StopThere()])
    try:
        summary = starter.run()
    finally:
        starter.close()
    if not starter.loop.stopped:
        raise RuntimeError(f"the run ended at {summary.env_steps} steps below the normalised score {stop_at}")
    flat = {k[len("data/"):]: v for k, v in starter.feeder.buffer.state_dict().items() if k.startswith("data/")}
    meta = {"env": env_id, "source": f"replay buffer stopped at {stop_at:.2f}", **action_metadata(starter.agent.env)}
    dataset = Dataset.from_transitions(flat, n_envs=params.n_envs, metadata=meta)
    return dataset, normalized(summary.final_eval_return), summary.env_steps
