"""GPU placement for multi-process (MPI) runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

from aquaml.tools.imports import optional_import


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def _jax_started() -> bool:
    """True once JAX has created its devices (then CUDA_VISIBLE_DEVICES is read no more)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # internals moved: assume the worst
        return True


def allocate_gpu(comm=None, learners: int = 1) -> str | None:
    """Give each rank its device; call it at the top of the script, before JAX starts.

    Ranks ``0..learners-1`` learn: each gets a GPU of its node, round-robin by its rank among
    the node's learners. The other ranks only step environments and get the CPU
    (``CUDA_VISIBLE_DEVICES=''``, ``JAX_PLATFORMS=cpu``). Without GPUs nothing changes.
    Called after JAX created its devices, it cannot move this process any more: it warns
    and returns None.

    Returns the GPU id given to this rank, or None.
    """
    ids = _gpu_ids()
    if not ids:
        return None
    if _jax_started():
        warnings.warn("allocate_gpu was called after JAX created its devices, so it cannot place this "
                      "process; call it at the top of the script, before anything runs JAX", stacklevel=2)
        return None
    rank, local_learner = 0, 0
    if comm is not None:
        MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

        rank = comm.Get_rank()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        node_ranks = node.allgather(rank)  # collective: every rank of the node takes part
        local_learner = sum(1 for r in node_ranks if r < learners and r < rank)
    if rank >= learners:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"
        return None
    chosen = ids[local_learner % len(ids)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen
