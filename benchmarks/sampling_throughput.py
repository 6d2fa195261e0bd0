"""Environment steps per second with policy inference, with worker processes.

One invocation compares, for Pendulum-v1 and HalfCheetah-v5 with K = 1 and 2 worker
processes (one env each):

- ``aquaml trainer``: AquaML's own collector as training uses it (SAC's jitted actor on all
  envs per step, transitions recorded, episode bookkeeping), over ``K`` shared-memory workers;
- ``aquaml vector``, ``gymnasium async`` (``AsyncVectorEnv(shared_memory=True)``) and
  ``sb3 subproc`` (``SubprocVecEnv``): the same loop for each, ``obs -> policy -> step``, with
  the same jitted 64x64 tanh-Gaussian policy.

Prints steps/s and each row's ratio to gymnasium's (target for AquaML >= 3x). In-process
rows (``aquaml in-process`` trainer, gymnasium ``SyncVectorEnv``) are given for reference.

Run from the repository root:  python benchmarks/sampling_throughput.py [--steps 4000]
  (needs the bench extra: pip install -e ".[bench]")
"""
from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aquaml  # noqa: E402,F401  (JAX backend for Keras)
import gymnasium as gym  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from aquaml.algorithm import SACParameters  # noqa: E402
from aquaml.parallel import SharedMemoryVectorEnv  # noqa: E402
from aquaml.starter import RLTaskStarter  # noqa: E402

TARGET = 3.0


def make_policy(obs_dim: int, act_dim: int):
    """A 64x64 tanh-Gaussian MLP policy, jitted: (params, obs, key) -> (action, key)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    sizes = [(obs_dim, 64), (64, 64), (64, 2 * act_dim)]
    params = [(jax.random.normal(k, s) / np.sqrt(s[0]), jnp.zeros(s[1])) for k, s in zip(keys, sizes)]

    @jax.jit
    def act(params, obs, key):
        x = obs.astype(jnp.float32)
        for w, b in params[:-1]:
            x = jnp.tanh(x @ w + b)
        mean, log_std = jnp.split(x @ params[-1][0] + params[-1][1], 2, axis=-1)
        key, sub = jax.random.split(key)
        return jnp.tanh(mean + jnp.exp(log_std) * jax.random.normal(sub, mean.shape)), key

    return params, act


def loop_rate(env, policy, steps: int, sb3: bool = False) -> float:
    """Steps/s of obs -> policy -> step on a vector env (random-free, seeded)."""
    params, act = policy
    key = jax.random.PRNGKey(1)
    if sb3:
        env.seed(0)
        obs = env.reset()
    else:
        obs, _ = env.reset(seed=0)
    scale = env.action_space.high
    n = env.num_envs
    warm_until = time.perf_counter() + 0.5  # compilation, then half a second of warm-up steps
    while True:
        action, key = act(params, obs, key)
        obs = env.step(np.asarray(action) * scale)[0]
        if time.perf_counter() > warm_until:
            break
    start = time.perf_counter()
    for _ in range(steps // n):
        action, key = act(params, obs, key)
        obs = env.step(np.asarray(action) * scale)[0]
    return (steps // n) * n / (time.perf_counter() - start)


def trainer_rate(env_id: str, n_workers: int, steps: int) -> float:
    n_envs = max(n_workers, 1)
    params = SACParameters(n_envs=n_envs, update_interval=steps // n_envs, hidden_sizes=(64, 64), seed=0)
    starter = RLTaskStarter(env_id, algo_hyperparameter=params, progress=False, n_workers=n_workers,
                            run_root=Path.cwd() / "runs")  # the scratch folder main() runs in
    c, rng = starter.collector, np.random.default_rng(0)
    actor = starter.algo.actor_params(starter.state)
    warm_until = time.perf_counter() + 0.5  # compilation, then half a second of warm-up steps
    while time.perf_counter() < warm_until:
        c.collect(50, actor, starter.loop.act_key, rng)
    start = time.perf_counter()
    c.collect(steps // n_envs, actor, starter.loop.act_key, rng)
    rate = (steps // n_envs) * n_envs / (time.perf_counter() - start)
    starter.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="env steps per measurement")
    parser.add_argument("--envs", default="Pendulum-v1,HalfCheetah-v5")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    # MuJoCo logs warnings (HalfCheetah's model has one) to ./MUJOCO_LOG.TXT, in every worker
    # too: run from a scratch folder so that nothing lands in the working tree
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="aquaml-bench-") as scratch:
        os.chdir(scratch)
        try:
            compare(args)
        finally:
            os.chdir(home)


def compare(args: argparse.Namespace) -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    print(f"# {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
          f"gymnasium {gym.__version__}, jax {jax.__version__}")
    print(f"{'env':<16} {'K':>2}  {'sampler':<20} {'steps/s':>9} {'/gym async':>10}")
    for env_id in args.envs.split(","):
        probe = gym.make(env_id)
        policy = make_policy(probe.observation_space.shape[0], probe.action_space.shape[0])
        probe.close()
        fn = lambda: gym.make(env_id)  # noqa: E731
        print(f"{env_id:<16} {'-':>2}  {'aquaml in-process':<20} {trainer_rate(env_id, 0, args.steps):>9.0f}")
        print(f"{env_id:<16} {'-':>2}  {'gymnasium sync':<20} "
              f"{loop_rate(gym.vector.SyncVectorEnv([fn]), policy, args.steps):>9.0f}")
        for k in (int(x) for x in args.workers.split(",")):
            rates = {"aquaml trainer": trainer_rate(env_id, k, args.steps)}
            for name, make in (("aquaml vector", lambda: SharedMemoryVectorEnv([fn] * k)),
                               ("gymnasium async", lambda: gym.vector.AsyncVectorEnv([fn] * k, shared_memory=True)),
                               ("sb3 subproc", lambda: SubprocVecEnv([fn] * k))):
                env = make()
                rates[name] = loop_rate(env, policy, args.steps, sb3=name.startswith("sb3"))
                env.close()
            for name, rate in rates.items():
                print(f"{env_id:<16} {k:>2}  {name:<20} {rate:>9.0f} {rate / rates['gymnasium async']:>9.2f}x")
            best = max(rates["aquaml trainer"], rates["aquaml vector"]) / rates["gymnasium async"]
            print(f"{'':<19} target >= {TARGET:g}x gymnasium async: {'met' if best >= TARGET else 'NOT met'} "
                  f"({best:.2f}x)")


if __name__ == "__main__":
    main()
