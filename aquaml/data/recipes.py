"""D4RL-style dataset recipes, regenerated locally: random returns, and "medium-replay" (the
replay buffer of an RL run stopped once its evaluation reaches a chosen normalised score).

Normalised score = ``(R - R_random) / (R_expert - R_random)``; the tests and
``benchmarks/offline_vs_d3rlpy.py`` use these recipes on Pendulum-v1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aquaml.data.dataset import Dataset


def random_returns(env_id: str, episodes: int, seed: int = 0, first_episode: int = 10**6) -> np.ndarray:
    """Returns of uniformly random actions over seeded evaluation-stream episodes."""
    import gymnasium as gym

    from aquaml.sampler import episode_seed
    from aquaml.sampler.collector import EVAL_STREAM

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


class _Reached(Exception):
    pass


def stopped_replay(env_id: str, params, stop_at: float, expert_return: float, random_return: float,
                   run_root: str | Path) -> tuple[Dataset, float, int]:
    """Train ``params`` (SAC or TD3 parameters) on ``env_id`` until an evaluation reaches the
    normalised score ``stop_at``; returns ``(its replay buffer as episodes, the score reached,
    env steps)``. Raises if the run ends first."""
    from aquaml.algorithm.registry import builtin_algorithms
    from aquaml.data.collect import action_metadata
    from aquaml.starter import RLTaskStarter
    from aquaml.starter.loop import Hook

    def normalized(r: float) -> float:
        return (r - random_return) / (expert_return - random_return)

    class StopThere(Hook):
        def on_display(self, loop, row):
            if normalized(row["eval_return_mean"]) >= stop_at:
                raise _Reached

    algo = next(cls for cls in builtin_algorithms().values() if isinstance(params, cls.Parameters))
    starter = RLTaskStarter(env_id, None, algo, params, run_root=run_root, progress=False, hooks=[StopThere()])
    try:
        starter.run()
    except _Reached:
        pass
    else:
        raise RuntimeError(f"the run ended at {starter.env_steps} steps below the normalised score {stop_at}")
    finally:
        starter.close()
    flat = {k[len("data/"):]: v for k, v in starter.buffer.state_dict().items() if k.startswith("data/")}
    meta = {"env": env_id, "source": f"replay buffer stopped at {stop_at:.2f}", **action_metadata(starter.env)}
    dataset = Dataset.from_transitions(flat, n_envs=params.n_envs, metadata=meta)
    return dataset, normalized(starter.eval_history[-1][1]), starter.env_steps
