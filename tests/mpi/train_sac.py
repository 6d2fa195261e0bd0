"""Run under mpirun by tests/test_mpi.py: SAC on Pendulum with rank 0 learning, the others sampling.

Arguments: run_root [fault], where fault is ``kill`` (rank 2 kills itself mid-run) or
``raise`` (rank 2's environment raises mid-run). Prints one JSON line on rank 0. With a fault,
each rank also keeps ``run_root/shm/<pid>.names`` up to date: the /dev/shm names it has mapped.
"""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mpi4py import MPI

from aquaml.tools.gpu import allocate_gpu

comm = MPI.COMM_WORLD


def record_shared_memory(folder: Path) -> None:
    """Every 0.1 s, write the /dev/shm names this rank has mapped so far (unlinked ones too) to
    ``folder/<pid>.names``: the test checks that none of them outlives the job, even when the
    runtime kills the rank, without looking at segments of processes outside the job."""
    folder.mkdir(parents=True, exist_ok=True)
    path, seen = folder / f"{os.getpid()}.names", set()
    while True:
        with open("/proc/self/maps") as f:
            names = {line.split("/dev/shm/", 1)[1].strip().removesuffix(" (deleted)") for line in f
                     if "/dev/shm/" in line}
        if not names <= seen:
            seen |= names
            (tmp := path.with_suffix(".tmp")).write_text("\n".join(sorted(seen)))
            os.replace(tmp, path)  # whole lists only, should the rank be killed while writing
        time.sleep(0.1)


if len(sys.argv) > 2:
    threading.Thread(target=record_shared_memory, args=(Path(sys.argv[1]) / "shm",), daemon=True).start()
allocate_gpu(comm)

import gymnasium as gym  # noqa: E402

from aquaml import RLTaskStarter, SACParameters  # noqa: E402

run_root = sys.argv[1]
fault = sys.argv[2] if len(sys.argv) > 2 else None


class BreaksAfter(gym.Wrapper):
    """Pendulum whose step raises after 300 steps (on the rank that builds it)."""

    def __init__(self):
        super().__init__(gym.make("Pendulum-v1"))
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps > 300:
            raise RuntimeError("actuator 3 overheated")
        return self.env.step(action)


env = "Pendulum-v1"
if fault == "raise" and comm.Get_rank() == 2:
    env = BreaksAfter
if fault == "kill" and comm.Get_rank() == 2:
    threading.Timer(8.0, os.kill, (os.getpid(), signal.SIGKILL)).start()

params = SACParameters(n_epochs=400, n_envs=2, update_interval=25, update_times=50, batch_size=256,
                       learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=50, calculate_episodes=10,
                       seed=0)
summary = RLTaskStarter(env, algo_hyperparameter=params, mpi_comm=comm, run_root=run_root, progress=False).run()
if summary is not None:
    print(json.dumps({"rank": comm.Get_rank(), "final": summary.final_eval_return, "steps": summary.env_steps,
                      "history": summary.eval_history}), flush=True)
else:
    assert comm.Get_rank() != 0
