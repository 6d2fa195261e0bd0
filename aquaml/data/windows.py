"""Windows of consecutive steps drawn from flat data that holds whole episodes (datasets, the
DAgger aggregate): a window never runs past its episode's last step; later steps repeat that
step with ``mask`` 0 (as the replay buffer pads windows that run past its newest step)."""
from __future__ import annotations

import numpy as np


def last_steps(ends: np.ndarray) -> np.ndarray:
    """For each step, the index of the first step at or after it flagged in ``ends`` (its
    episode's last step)."""
    idx = np.flatnonzero(ends)
    return idx[np.searchsorted(idx, np.arange(len(ends)))]


def ends_of(lengths: np.ndarray) -> np.ndarray:
    """End flags of episodes of ``lengths`` laid end to end."""
    ends = np.zeros(int(np.sum(lengths)), bool)
    ends[np.cumsum(lengths) - 1] = True
    return ends


def episode_windows(data: dict, last_step: np.ndarray, starts: np.ndarray, length: int) -> dict:
    """Windows of ``length`` steps of every array in ``data`` from ``starts`` (any shape), with
    ``mask``; ``last_step`` from :func:`last_steps`."""
    steps = starts[..., None] + np.arange(length)
    last = last_step[starts][..., None]
    out = {k: v[np.minimum(steps, last)] for k, v in data.items()}
    out["mask"] = steps <= last
    return out


def draw_batches(data: dict, rng: np.random.Generator, n_batches: int, batch_size: int,
                 length: int | None = None, last_step: np.ndarray | None = None) -> dict:
    """``n_batches`` stacked batches of flat ``data``: ``batch_size`` uniform steps each, or with
    ``length``, ``batch_size // length`` :func:`episode_windows` from uniform starts."""
    n = len(data["reward"])
    if length:
        return episode_windows(data, last_step, rng.integers(0, n, size=(n_batches, batch_size // length)), length)
    idx = rng.integers(0, n, size=(n_batches, batch_size))
    return {k: v[idx] for k, v in data.items()}
