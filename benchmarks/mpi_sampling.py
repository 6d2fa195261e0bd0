"""MPI sampler ranks against shared-memory worker processes: overhead and throughput.

For K = 1, 2, 3 samplers (one env each), one invocation measures, per vector step:

- ``shm workers``: :class:`aquaml.parallel.WorkerPool` with K worker processes;
- ``mpi on-node``: ``mpirun -n K+1``, samplers on the learner's node (MPI-3 shared window);
- ``mpi messages``: the same with ``AQUAML_MPI_TRANSPORT=messages`` (the cross-node path,
  here over MPICH's on-node channel);

on an env whose step costs nothing (the overhead) and on Pendulum-v1 (throughput with a
fixed action, no policy), after half a second of warm-up steps. Prints microseconds per vector step, env steps per second, and
each MPI path's time over the shared-memory path's (target for on-node: within 1.5x).

Run from the repository root:  python benchmarks/mpi_sampling.py   (needs aquaml[mpi])
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from aquaml.parallel.block import table_fields  # noqa: E402
from aquaml.parallel.pool import WorkerPool  # noqa: E402
from aquaml.parallel.vector_env import gym_steppers  # noqa: E402
from vector_env_overhead import NullEnv  # noqa: E402

TARGET = 1.5
ENVS = {"null": NullEnv, "Pendulum-v1": lambda: gym.make("Pendulum-v1")}
OBS = {"null": (4,), "Pendulum-v1": (3,)}


def fields(env: str, n: int):
    return table_fields(n, {"obs": (OBS[env], np.dtype(np.float32))}, {"action": ((1,), np.dtype(np.float32))})


def time_steps(pool, steps: int) -> float:
    pool.arrays["reset_mask"][:] = True
    pool.arrays["reset_seed"][:] = np.arange(pool.n_envs)
    pool.run("reset")
    warm_until = time.perf_counter() + 0.5  # half a second of warm-up steps
    while time.perf_counter() < warm_until:
        pool.run("step")
    start = time.perf_counter()
    for _ in range(steps):
        pool.run("step")
    return (time.perf_counter() - start) / steps * 1e6


def inner(steps: int) -> None:
    """Under mpirun: rank 0 times an MPIPool per env; the others serve."""
    from mpi4py import MPI

    from aquaml.parallel.mpi import MPIPool, serve

    comm = MPI.COMM_WORLD
    k = comm.Get_size() - 1
    results = {}
    for env in ENVS:
        if comm.Get_rank() == 0:
            pool = MPIPool(comm, k, fields(env, k), gym_steppers,
                           transport=os.environ.get("AQUAML_MPI_TRANSPORT", "auto"))
            results[env] = time_steps(pool, steps)
            pool.close()
        else:
            serve(comm, lambda lo, hi, env=env: [ENVS[env]] * (hi - lo))
    if comm.Get_rank() == 0:
        print(json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--samplers", default="1,2,3")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inner(args.steps)
    mpirun = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")
    print(f"# {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}")
    print(f"{'K':>2}  {'env':<12} {'path':<14} {'us/step':>9} {'steps/s':>9} {'/shm':>7}")
    for k in (int(x) for x in args.samplers.split(",")):
        shm = {}
        for env, make in ENVS.items():
            with WorkerPool([make] * k, fields(env, k), gym_steppers, n_workers=k) as pool:
                shm[env] = time_steps(pool, args.steps)
        rows = {"shm workers": shm}
        for path, transport in (("mpi on-node", "auto"), ("mpi messages", "messages")):
            out = subprocess.run([mpirun, "-n", str(k + 1), sys.executable, __file__, "--inner", "--steps",
                                  str(args.steps)], capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, AQUAML_MPI_TRANSPORT=transport))
            line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
            if line is None:
                raise SystemExit(f"mpirun failed:\n{out.stderr[-3000:]}")
            rows[path] = json.loads(line)
        for env in ENVS:
            for path, values in rows.items():
                us = values[env]
                print(f"{k:>2}  {env:<12} {path:<14} {us:>9.1f} {k / us * 1e6:>9.0f} {us / shm[env]:>6.2f}x")
        ratio = max(rows["mpi on-node"][env] / shm[env] for env in ENVS)
        print(f"    on-node MPI within {TARGET:g}x of shared memory: {'met' if ratio <= TARGET else 'NOT met'} "
              f"(worst {ratio:.2f}x)")


if __name__ == "__main__":
    main()
