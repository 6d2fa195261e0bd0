"""GPU placement for multi-process runs."""
from __future__ import annotations

import os
import shutil
import subprocess


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


def allocate_gpu(comm=None) -> str | None:
    """Give each process of a node its own GPU via ``CUDA_VISIBLE_DEVICES``.

    Call it at the top of the script, before JAX initialises (the seed's rule). With an
    MPI communicator the GPU is chosen by the rank within the node. Returns the GPU id
    chosen, or None on a machine without GPUs, where it changes nothing.
    """
    ids = _gpu_ids()
    if not ids:
        return None
    local_rank = 0
    if comm is not None:
        from mpi4py import MPI

        local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    chosen = ids[local_rank % len(ids)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen
