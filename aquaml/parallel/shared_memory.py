"""Named numpy arrays in one POSIX shared-memory segment.

The creating process owns the segment: it is registered with Python's resource tracker,
so it is unlinked even when the owner is killed with SIGKILL, and :meth:`SharedArrays.close`
unlinks it in normal operation. Other processes attach without registering, so their exit
never removes a segment that others still use.
"""
from __future__ import annotations

import os
import secrets
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Mapping

import numpy as np

Field = tuple[tuple[int, ...], np.dtype]
_ALIGN = 64  # a cache line: arrays written by different processes never share one


def layout(fields: Mapping[str, Field]) -> tuple[dict[str, tuple[int, tuple[int, ...], np.dtype]], int]:
    """Offsets of each field in the segment, and the segment size (the same in every process)."""
    offsets, size = {}, 0
    for name, (shape, dtype) in fields.items():
        dtype = np.dtype(dtype)
        offsets[name] = (size, tuple(int(s) for s in shape), dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size += -(-max(nbytes, 1) // _ALIGN) * _ALIGN
    return offsets, max(size, _ALIGN)


def views(fields: Mapping[str, Field], buffer) -> dict[str, np.ndarray]:
    """The arrays of ``fields`` laid out in ``buffer`` (a segment, an MPI window) by :func:`layout`."""
    offsets, _ = layout(fields)
    return {k: np.ndarray(shape, dtype, buffer=buffer, offset=offset) for k, (offset, shape, dtype) in offsets.items()}


def _attach(name: str) -> SharedMemory:
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    # Python < 3.13 registers every attachment with a tracker that unlinks at exit; the
    # attaching process must not own the segment.
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return SharedMemory(name=name)
    finally:
        resource_tracker.register = register


class SharedArrays:
    """A dict of preallocated numpy arrays backed by one shared-memory segment.

    Args:
        fields: ``name -> (shape, dtype)``; the order fixes the layout.
        name: attach to this existing segment instead of creating one.
        prefix: start of the name of a created segment (a random suffix makes it unique).
    """

    def __init__(self, fields: Mapping[str, Field], name: str | None = None, prefix: str = "aquaml") -> None:
        self.fields = {k: (tuple(s), np.dtype(d)) for k, (s, d) in fields.items()}
        _, size = layout(self.fields)
        self.owner = name is None
        if self.owner:
            name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
            self._shm = SharedMemory(name=name, create=True, size=size)
        else:
            self._shm = _attach(name)
        self.name = name
        self.arrays: dict[str, np.ndarray] = views(self.fields, self._shm.buf)
        if self.owner:
            for array in self.arrays.values():
                array.fill(0)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def close(self) -> None:
        """Drop the views and the mapping; the owner also removes the segment."""
        if self._shm is None:
            return
        self.arrays = {}
        shm, self._shm = self._shm, None
        try:
            shm.close()
        except BufferError:  # a view escaped; the mapping goes when the process ends
            pass
        if self.owner:
            try:
                shm.unlink()
            except FileNotFoundError:
                pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
