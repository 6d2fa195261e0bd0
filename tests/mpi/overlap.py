"""Run under mpirun by tests/test_mpi.py: SAC with overlap (collection during updates, two
double-buffered sampler halves) over MPI; prints one JSON line on rank 0."""
import json
import sys

from mpi4py import MPI

from aquaml import RLTaskStarter, SACParameters

comm = MPI.COMM_WORLD
params = SACParameters(n_epochs=40, n_envs=2, update_interval=25, update_times=20, batch_size=64, mini_buffer_size=200,
                       hidden_sizes=(32, 32), display_interval=10, calculate_episodes=2, seed=0, overlap=True)
summary = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, mpi_comm=comm, run_root=sys.argv[1],
                        progress=False).run()
if summary is not None:
    print(json.dumps({"steps": summary.env_steps, "grad_steps": summary.grad_steps,
                      "returns": summary.train_returns}), flush=True)
