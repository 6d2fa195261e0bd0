"""Running mean and variance of named observations, as pure JAX functions.

The statistics live in the algorithm's training state, so they are jitted with the
update, saved in checkpoints and restored exactly. Merging uses the parallel-variance
formula (Chan et al.), so a batch of any size updates them in one step.

Data-parallel learners (``learners > 1``) each see their own batch. Given ``tree_sum`` (a
sum of a pytree over the learners, e.g. ``mean_across(comm).tree_sum``), the batch moments
are those of the union of every learner's batch (count and sum summed, then the squared
deviations from that common mean summed), so every learner merges the same numbers and
keeps identical statistics.
"""
from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp

CLIP = 10.0  # normalised observations are clipped to [-CLIP, CLIP]
EPS = 1e-8


def init_stats(shapes: Mapping[str, tuple[int, ...]]) -> dict:
    return {"mean": {k: jnp.zeros(s, jnp.float32) for k, s in shapes.items()},
            "var": {k: jnp.ones(s, jnp.float32) for k, s in shapes.items()},
            "count": jnp.asarray(EPS, jnp.float32)}


def batch_moments(shapes: Mapping[str, tuple[int, ...]], obs: Mapping[str, jax.Array],
                  tree_sum: Callable | None = None) -> tuple[dict, dict, dict]:
    """``(count, mean, var)``, each ``name -> value``, of a batch with any leading axes.

    With ``tree_sum`` the moments are those of the batches of every learner together: two
    sums over the learners (count and sum, then squared deviations from the common mean),
    so the variance suffers no cancellation.
    """
    xs = {k: obs[k].reshape(-1, *s).astype(jnp.float32) for k, s in shapes.items()}
    if tree_sum is None:
        return ({k: x.shape[0] for k, x in xs.items()}, {k: jnp.mean(x, axis=0) for k, x in xs.items()},
                {k: jnp.var(x, axis=0) for k, x in xs.items()})
    first = tree_sum({"n": {k: jnp.asarray(x.shape[0], jnp.float32) for k, x in xs.items()},
                      "sum": {k: jnp.sum(x, axis=0) for k, x in xs.items()}})
    count = first["n"]
    mean = {k: first["sum"][k] / count[k] for k in xs}
    squares = tree_sum({k: jnp.sum((x - mean[k]) ** 2, axis=0) for k, x in xs.items()})
    return count, mean, {k: squares[k] / count[k] for k in xs}


def merge_stats(stats: dict, count: Mapping, mean: Mapping, var: Mapping) -> dict:
    """Chan et al.'s merge of batch moments (:func:`batch_moments`) into the running statistics."""
    new_mean, new_var = {}, {}
    total = None
    for k, m in stats["mean"].items():
        n = count[k]
        total = stats["count"] + n
        delta = mean[k] - m
        new_mean[k] = m + delta * n / total
        new_var[k] = (stats["var"][k] * stats["count"] + var[k] * n + delta ** 2 * stats["count"] * n / total) / total
    return {"mean": new_mean, "var": new_var, "count": stats["count"] if total is None else total}


def update_stats(stats: dict, obs: Mapping[str, jax.Array], tree_sum: Callable | None = None) -> dict:
    """Merge a batch (any leading axes) into the running statistics; with ``tree_sum``, every
    learner's batch (the result is then the same on every learner)."""
    shapes = {k: m.shape for k, m in stats["mean"].items()}
    return merge_stats(stats, *batch_moments(shapes, obs, tree_sum))


def normalize(stats: dict, obs: Mapping[str, jax.Array]) -> dict:
    """Normalise the names the statistics cover; other entries (e.g. hidden states) pass through,
    and covered names absent from ``obs`` (another model's inputs) are skipped."""
    out = dict(obs)
    for k, m in stats["mean"].items():
        if k not in obs:
            continue
        out[k] = jnp.clip((obs[k] - m) / jnp.sqrt(stats["var"][k] + EPS), -CLIP, CLIP)
    return out
