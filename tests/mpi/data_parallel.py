"""Run under ``mpirun -n 4`` by tests/test_mpi.py: 2 data-parallel SAC learners, 1 sampler each
(``RUN_ROOT EPOCHS [ALGO DATASET]``: an adversarial imitation algorithm on a SAC generator, e.g.
``gail demos.npz``, whose discriminator gradients are averaged too).

Prints, on world rank 0, one JSON line: whether both learners ended with bit-identical
parameters, whether their groups collected different episodes, and the final return.
"""
import hashlib
import json
import sys

from mpi4py import MPI

from aquaml.tools.gpu import allocate_gpu

comm = MPI.COMM_WORLD
allocate_gpu(comm, learners=2)

from aquaml import RLTaskStarter  # noqa: E402
from aquaml.algorithm import ALGORITHMS  # noqa: E402
from aquaml.tools.checkpoint import tree_to_arrays  # noqa: E402

algo = ALGORITHMS[sys.argv[3] if len(sys.argv) > 3 else "sac"]
data = {"dataset": sys.argv[4]} if len(sys.argv) > 4 else {}
params = algo.Parameters(n_epochs=int(sys.argv[2]), update_interval=50, update_times=50, batch_size=128,
                         mini_buffer_size=500, hidden_sizes=(32, 32), display_interval=20, calculate_episodes=5,
                         seed=4, **data)
starter = RLTaskStarter("Pendulum-v1", None, algo, params, mpi_comm=comm, run_root=sys.argv[1], progress=False,
                        learners=2)
summary = starter.run()
if starter.learner_comm is not None:
    digest = hashlib.sha256()
    for key, value in sorted(tree_to_arrays(starter.state).items()):
        digest.update(key.encode() + value.tobytes())
    digests = starter.learner_comm.gather(digest.hexdigest(), root=0)
    returns = starter.learner_comm.gather(summary.train_returns[:5], root=0)
    if comm.Get_rank() == 0:
        print(json.dumps({"identical": len(set(digests)) == 1, "learners": len(digests),
                          "different_data": returns[0] != returns[1], "final": summary.final_eval_return,
                          "grad_steps": summary.grad_steps}), flush=True)
