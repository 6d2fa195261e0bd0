"""Running mean and variance of named observations, as pure JAX functions.

The statistics live in the algorithm's training state, so they are jitted with the
update, saved in checkpoints and restored exactly. Merging uses the parallel-variance
formula (Chan et al.), so a batch of any size updates them in one step.
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

CLIP = 10.0  # normalised observations are clipped to [-CLIP, CLIP]
EPS = 1e-8


def init_stats(shapes: Mapping[str, tuple[int, ...]]) -> dict:
    return {"mean": {k: jnp.zeros(s, jnp.float32) for k, s in shapes.items()},
            "var": {k: jnp.ones(s, jnp.float32) for k, s in shapes.items()},
            "count": jnp.asarray(EPS, jnp.float32)}


def update_stats(stats: dict, obs: Mapping[str, jax.Array]) -> dict:
    """Merge a batch (any leading axes) into the running statistics."""
    mean, var = {}, {}
    count = None
    for k, m in stats["mean"].items():
        x = obs[k].reshape(-1, *m.shape).astype(jnp.float32)
        n = x.shape[0]
        b_mean, b_var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
        total = stats["count"] + n
        delta = b_mean - m
        mean[k] = m + delta * n / total
        var[k] = (stats["var"][k] * stats["count"] + b_var * n + delta ** 2 * stats["count"] * n / total) / total
        count = total
    return {"mean": mean, "var": var, "count": stats["count"] if count is None else count}


def normalize(stats: dict, obs: Mapping[str, jax.Array]) -> dict:
    """Normalise the names the statistics cover; other entries (e.g. hidden states) pass through."""
    out = dict(obs)
    for k, m in stats["mean"].items():
        out[k] = jnp.clip((obs[k] - m) / jnp.sqrt(stats["var"][k] + EPS), -CLIP, CLIP)
    return out
