"""Run under ``mpirun -n 4`` by tests/test_mpi.py: 2 data-parallel PPO learners, 1 sampler each
(``RUN_ROOT EPOCHS [DATASET]``: with CartPole demonstrations, GAIL with a PPO generator, whose
discriminator gradients are averaged too).

PPO with observation normalisation and reward scaling: besides the gradients, the learners
merge their running statistics. Prints, on world rank 0, one JSON line: whether both
learners ended with bit-identical states (parameters, optimizer states, observation and
return statistics, key; all but ``returns``, each env's running discounted return, which is
per-env data of each learner's own environments), whether their groups collected different
episodes, and whether their ``returns`` differ.
"""
import hashlib
import json
import sys

from mpi4py import MPI

from aquaml.tools.gpu import allocate_gpu

comm = MPI.COMM_WORLD
allocate_gpu(comm, learners=2)

from aquaml import RLTaskStarter  # noqa: E402
from aquaml.algorithm import PPO, GAILPPO  # noqa: E402
from aquaml.tools.checkpoint import tree_to_arrays  # noqa: E402

algo = GAILPPO if len(sys.argv) > 3 else PPO
data = {"dataset": sys.argv[3]} if len(sys.argv) > 3 else {}
params = algo.Parameters(n_epochs=int(sys.argv[2]), n_envs=2, rollout_length=64, batch_size=64, n_update_epochs=2,
                         normalize_obs=True, scale_reward=True, hidden_sizes=(32, 32), display_interval=100,
                         calculate_episodes=1, seed=5, **data)
starter = RLTaskStarter("CartPole-v1", algo=algo, algo_hyperparameter=params, mpi_comm=comm, run_root=sys.argv[1],
                        progress=False, learners=2)
summary = starter.run()
if starter.learner_comm is not None:
    arrays = tree_to_arrays(starter.state)
    running_key = ".gen.returns" if data else ".returns"
    shared = {k: v for k, v in arrays.items() if k != running_key}
    assert len(shared) == len(arrays) - 1, sorted(arrays)
    obs_stats = starter.state.gen.obs_stats if data else starter.state.obs_stats
    digest = hashlib.sha256()
    for key, value in sorted(shared.items()):
        digest.update(key.encode() + value.tobytes())
    gathered = starter.learner_comm.gather(
        (digest.hexdigest(), summary.train_returns[:5], arrays[running_key].tobytes(),
         float(obs_stats["count"]), summary.env_steps), root=0)
    if comm.Get_rank() == 0:
        digests, returns, running, counts, steps = zip(*gathered)
        print(json.dumps({"identical": len(set(digests)) == 1, "learners": len(digests),
                          "different_data": returns[0] != returns[1], "returns_differ": running[0] != running[1],
                          "obs_count": counts[0], "env_steps": steps[0], "grad_steps": summary.grad_steps}),
              flush=True)
