"""Named batches: flat ``{'obs/pos': array, 'action': array}`` maps of numpy arrays.

Storage is flat (one array per name, easy to save and to share), while algorithms read
nested views (``batch['obs']['pos']``). A ``/`` in a name separates the two levels.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

SEP = "/"


def batch_size(batch: Mapping[str, np.ndarray]) -> int:
    """The common leading dimension of all arrays; raises if they disagree."""
    sizes = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in batch.items()}
    distinct = set(sizes.values())
    if len(distinct) != 1 or None in distinct:
        raise ValueError(f"arrays of a batch must share their leading dimension, got {sizes}")
    return distinct.pop()


def nest(flat: Mapping[str, np.ndarray]) -> dict:
    """``{'obs/pos': x, 'action': a}`` -> ``{'obs': {'pos': x}, 'action': a}``."""
    out: dict = {}
    for key, value in flat.items():
        head, sep, tail = key.partition(SEP)
        if sep:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


def flatten(nested: Mapping) -> dict[str, np.ndarray]:
    """Inverse of :func:`nest` (one level)."""
    out = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            out.update({f"{key}{SEP}{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


#: fields that losses multiply by: float32 in training batches
FLOAT_FIELDS = ("reward", "terminated", "truncated", "mask")


def training_batch(flat: Mapping[str, np.ndarray]) -> dict:
    """The nested view an update reads, with rewards, end flags and masks as float32."""
    out = nest(flat)
    for k in FLOAT_FIELDS:
        if k in out:
            out[k] = np.asarray(out[k], np.float32)
    return out
