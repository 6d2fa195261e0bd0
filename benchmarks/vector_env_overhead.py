"""Per-step overhead of multi-process vector envs on an environment whose step costs nothing.

Compares, in one invocation, AquaML's ``SharedMemoryVectorEnv`` (all envs in one worker, and
one worker per env), Gymnasium's ``AsyncVectorEnv(shared_memory=True)`` and Stable-Baselines3's
``SubprocVecEnv``, for N = 1, 2, 4 environments. The environment returns a preallocated
observation of 4 floats, so the time per vector step is the framework's own cost: signalling,
copies and (for the peers) pickling. Each measurement follows half a second of warm-up steps. Prints microseconds per vector step and the ratio of
Gymnasium's to AquaML's (target >= 10x, about 30 us or less with one env).

Run from the repository root:  python benchmarks/vector_env_overhead.py [--steps 5000] [--envs 1,2,4]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from aquaml.parallel import SharedMemoryVectorEnv  # noqa: E402

TARGET = 10.0


class NullEnv(gym.Env):
    """Costs nothing per step; episodes last 1000 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self._obs = np.zeros(4, np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs, {}

    def step(self, action):
        self._t += 1
        return self._obs, 0.0, False, self._t >= 1000, {}


def time_steps(step, action, steps: int) -> float:
    warm_until = time.perf_counter() + 0.5  # warm-up: half a second of steps, for every sampler
    while time.perf_counter() < warm_until:
        step(action)
    start = time.perf_counter()
    for _ in range(steps):
        step(action)
    return (time.perf_counter() - start) / steps * 1e6


def make_vectors(n: int):
    fns = [NullEnv for _ in range(n)]
    yield "aquaml 1 worker", lambda: SharedMemoryVectorEnv(fns, n_workers=1)
    if n > 1:
        yield f"aquaml {n} workers", lambda: SharedMemoryVectorEnv(fns, n_workers=n)
    yield "gymnasium async", lambda: gym.vector.AsyncVectorEnv(fns, shared_memory=True)
    try:
        from stable_baselines3.common.vec_env import SubprocVecEnv
    except ImportError:
        return
    yield "sb3 subproc", lambda: SubprocVecEnv(fns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--envs", default="1,2,4")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}, gymnasium {gym.__version__}")
    print(f"{'envs':>4}  {'vector env':<18} {'us/step':>9} {'gym/this':>9}")
    for n in (int(x) for x in args.envs.split(",")):
        results = {}
        for name, make in make_vectors(n):
            env = make()
            if name.startswith("sb3"):
                env.seed(0)
                env.reset()
            else:
                env.reset(seed=0)
            action = np.zeros((n, 1), np.float32)
            results[name] = time_steps(env.step, action, args.steps)
            env.close()
        gym_us = results["gymnasium async"]
        for name, us in results.items():
            print(f"{n:>4}  {name:<18} {us:>9.1f} {gym_us / us:>8.1f}x")
        best = min(us for name, us in results.items() if name.startswith("aquaml"))
        verdict = "met" if gym_us / best >= TARGET else "NOT met"
        print(f"      target >= {TARGET:g}x gymnasium: {verdict} ({gym_us / best:.1f}x)")


if __name__ == "__main__":
    main()
