"""Run under mpirun by tests/test_mpi.py: SAC on Pendulum with rank 0 learning, the others sampling.

Arguments: run_root [fault], where fault is ``kill`` (rank 2 kills itself mid-run) or
``raise`` (rank 2's environment raises mid-run). Prints one JSON line on rank 0.
"""
import json
import os
import signal
import sys
import threading

from mpi4py import MPI

from aquaml.tools.gpu import allocate_gpu

comm = MPI.COMM_WORLD
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
                       learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=100, calculate_episodes=10,
                       seed=0)
summary = RLTaskStarter(env, algo_hyperparameter=params, mpi_comm=comm, run_root=run_root, progress=False).run()
if summary is not None:
    print(json.dumps({"rank": comm.Get_rank(), "final": summary.final_eval_return, "steps": summary.env_steps,
                      "history": summary.eval_history}), flush=True)
else:
    assert comm.Get_rank() != 0
