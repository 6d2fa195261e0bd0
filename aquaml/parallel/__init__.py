"""Sampling in worker processes over shared memory.

``block`` steps a share of a vector of environments over a table of arrays; ``pool`` runs
blocks in this process or in workers (``worker``), woken through ``signal``; the table
lives in ``shared_memory``. ``vector_env`` offers the same machinery as a Gymnasium
vector env.
"""
from aquaml.parallel.pool import LocalPool, WorkerError, WorkerPool, make_pool
from aquaml.parallel.shared_memory import SharedArrays
from aquaml.parallel.vector_env import SharedMemoryVectorEnv

__all__ = ["SharedMemoryVectorEnv", "WorkerPool", "LocalPool", "WorkerError", "make_pool", "SharedArrays"]
