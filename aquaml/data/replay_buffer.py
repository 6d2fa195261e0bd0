"""Preallocated ring buffer of transitions with vectorised insert and uniform sampling."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from aquaml.data.batch import batch_size


class ReplayBuffer:
    """Fixed-capacity storage of named fields, each a preallocated numpy array.

    Transitions are stored with their own ``next_obs/...`` fields, so the observation that
    followed a time-limit truncation is the true last observation of that episode, never
    the first observation of the next one.

    Args:
        capacity: maximum number of transitions kept; the oldest are overwritten first.
        fields: ``name -> (shape, dtype)`` per transition (shape excludes the batch axis).
    """

    def __init__(self, capacity: int, fields: Mapping[str, tuple[tuple[int, ...], np.dtype]]):
        if capacity <= 0:
            raise ValueError(f"replay buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.fields = {k: (tuple(s), np.dtype(d)) for k, (s, d) in fields.items()}
        self.data = {k: np.zeros((self.capacity, *s), d) for k, (s, d) in self.fields.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        """Insert ``n`` transitions at once; every field must be given with leading dim ``n``."""
        missing = set(self.fields) - set(batch)
        extra = set(batch) - set(self.fields)
        if missing or extra:
            raise KeyError(f"replay buffer fields mismatch: missing {sorted(missing)}, unknown {sorted(extra)}")
        n = batch_size(batch)
        if n > self.capacity:
            batch = {k: v[-self.capacity:] for k, v in batch.items()}
            n = self.capacity
        for k, v in batch.items():  # check everything before writing anything
            shape = self.fields[k][0]
            if np.shape(v)[1:] != shape:
                raise ValueError(f"replay buffer field {k!r}: expected shape (n, {shape}), got {np.shape(v)}")
        idx = (self.ptr + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.data[k][idx] = v
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample_indices(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
        """Uniform indices into the filled region only."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=shape)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.data.items()}

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int | None = None) -> dict[str, np.ndarray]:
        """``batch_size`` transitions, or ``(n_batches, batch_size)`` of them for a scanned update."""
        shape = batch_size if n_batches is None else (n_batches, batch_size)
        return self.gather(self.sample_indices(rng, shape))

    def sample_sequences(self, rng: np.random.Generator, n_sequences: int, length: int, stride: int = 1,
                         n_batches: int | None = None) -> dict[str, np.ndarray]:
        """Windows of ``length`` consecutive transitions of one environment, from uniform starts.

        With ``n`` environments inserted step by step, one environment's transitions lie
        ``stride = n`` slots apart. Steps of a window that would run past the newest
        transition are padding: ``'mask'`` is 0 there (and 1 elsewhere).
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (n_sequences,) if n_batches is None else (n_batches, n_sequences)
        starts = rng.integers(0, self.size, size=shape)
        offsets = np.arange(length) * stride
        newest_ahead = (self.ptr - 1 - starts) % self.capacity  # how far the newest transition lies ahead
        out = self.gather((starts[..., None] + offsets) % self.capacity)
        out["mask"] = offsets <= newest_ahead[..., None]
        return out

    # checkpointing: plain arrays and integers, nothing pickled
    def state_dict(self) -> dict[str, np.ndarray]:
        out = {f"data/{k}": v[: self.size] for k, v in self.data.items()}
        out["ptr"] = np.asarray(self.ptr)
        out["capacity"] = np.asarray(self.capacity)
        out["size"] = np.asarray(self.size)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        size = int(state["size"])
        saved = {k[len("data/"):] for k in state if k.startswith("data/")}
        if saved != set(self.fields):
            raise ValueError(f"saved replay buffer has fields {sorted(saved)}, this one {sorted(self.fields)}")
        if int(state["capacity"]) != self.capacity:  # the ring's order depends on it
            raise ValueError(f"saved replay buffer has capacity {int(state['capacity'])}, this one {self.capacity}")
        for k in self.fields:
            self.data[k][:size] = state[f"data/{k}"]
        self.size, self.ptr = size, int(state["ptr"])
