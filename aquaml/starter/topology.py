"""Who does what in a job: the learner, its sampler ranks, and data-parallel learner groups.

One process alone is the learner. Under ``mpirun -n N`` the ranks split into ``learners``
groups; each group's rank 0 learns and its other ranks step environments. Learners average
their gradients over ``learner_comm``; only world rank 0 writes the run folder.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable

from aquaml.parallel.data_parallel import mean_across
from aquaml.parallel.mpi import abort, rank_message, serve
from aquaml.tools.imports import optional_import


class Topology:
    """The MPI roles of this process (a single process when ``comm`` is None or has one rank).

    Attributes:
        world_comm: the job's communicator, or None for a single process.
        mpi_comm: this rank's group (its learner and samplers): the sampler pool's communicator.
        learner_comm: the learners' communicator (``learners > 1``, learner ranks only), else None.
        group: this rank's group index (0 for the first learner and its samplers).
    """

    def __init__(self, comm=None, learners: int = 1) -> None:
        if not isinstance(learners, int) or learners < 1:
            raise ValueError(f"learners must be a positive integer, got {learners!r}")
        self.world_comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.mpi_comm = self.world_comm
        self.learner_comm, self.group = None, 0
        if self.world_comm is None:
            if learners > 1:
                raise ValueError(f"learners={learners} needs an MPI communicator with more ranks (mpirun)")
            return
        size, rank = comm.Get_size(), comm.Get_rank()
        if learners > 1:
            MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

            samplers = size - learners
            if samplers < learners or samplers % learners:
                raise ValueError(f"{size} ranks cannot serve {learners} learners: the {samplers} other ranks must be "
                                 f"a positive multiple of {learners} (one group of samplers per learner)")
            # ranks 0..learners-1 learn; sampler ranks are dealt out to them in turn
            self.group = rank if rank < learners else (rank - learners) % learners
            self.mpi_comm = comm.Split(color=self.group, key=rank)
            learner_comm = comm.Split(color=0 if rank < learners else MPI.UNDEFINED, key=rank)
            self.learner_comm = learner_comm if learner_comm != MPI.COMM_NULL else None

    @property
    def is_sampler_rank(self) -> bool:
        """True on MPI ranks that only step environments (all but the learners)."""
        return self.mpi_comm is not None and self.mpi_comm.Get_rank() != 0

    @property
    def writes_run(self) -> bool:
        """Whether this process writes the run folder, logs and checkpoints (world rank 0)."""
        return self.world_comm is None or self.world_comm.Get_rank() == 0

    @property
    def samplers(self) -> int:
        """Sampler ranks serving this learner (0 without MPI)."""
        return 0 if self.mpi_comm is None else self.mpi_comm.Get_size() - 1

    def gradient_averaging(self):
        """The optax transformation that averages gradients over the learners, or None."""
        if self.learner_comm is None:
            return None
        return mean_across(self.learner_comm)

    def serve(self, env_factory: Callable) -> None:
        """On a sampler rank: step this group's environments until the learner closes the pool."""
        serve(self.mpi_comm, lambda lo, hi: [env_factory] * (hi - lo))

    @contextlib.contextmanager
    def fatal_on_every_rank(self, pool_of: Callable[[], object]):
        """Under MPI an error on a learner must end the samplers too (else they wait forever).

        While every sampler lives, they are closed in order (their ``run()`` returns and MPI
        finalises normally) and the error propagates on the learner; otherwise (a sampler died,
        the samplers never got their setup, or other learners may wait in a gradient average)
        the whole job is aborted. ``pool_of()`` returns the sampler pool, or None if not built yet.
        """
        if self.world_comm is None:
            yield
            return
        try:
            yield
        except BaseException as error:
            pool = pool_of()
            if pool is None or getattr(pool, "dead", True) or self.learner_comm is not None:
                abort(self.world_comm, error)
            try:
                pool.close()
            except BaseException:
                abort(self.world_comm, error)
            print(rank_message(self.world_comm, error), file=sys.stderr, flush=True)
            raise


def resolve_workers(n_envs: int, n_workers: int, envs_per_worker: int | None) -> int:
    """The number of sampler worker processes from ``n_workers`` or ``envs_per_worker``."""
    if envs_per_worker is not None:
        if n_workers:
            raise ValueError("give n_workers or envs_per_worker, not both")
        if not isinstance(envs_per_worker, int) or envs_per_worker < 1:
            raise ValueError(f"envs_per_worker must be a positive integer, got {envs_per_worker!r}")
        return -(-n_envs // envs_per_worker)
    if not isinstance(n_workers, int) or not 0 <= n_workers <= n_envs:
        raise ValueError(f"n_workers must be an integer from 0 to n_envs ({n_envs}), got {n_workers!r}; "
                         "raise n_envs to run more workers")
    return n_workers
