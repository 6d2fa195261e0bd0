"""Data-parallel learners: every learner's gradients are averaged over MPI before each step.

:func:`mean_across` is an optax transformation placed first in every optimizer of a learner
(through :func:`aquaml.model.optimizers.gradients_transformed_by`), so each algorithm's single
compiled update stays one call: inside it, a host callback sums the gradients of all
learners on learner 0 (in float64) and broadcasts the mean. Every learner therefore applies
bit-identical updates and, starting from the same seed, keeps bit-identical parameters.

The callbacks are *ordered*: a learner's several optimizers (critics, actor, temperature)
reach the collective in the same order on every learner.
"""
from __future__ import annotations

import jax
import numpy as np
import optax
from jax.experimental import io_callback


def mean_across(comm) -> optax.GradientTransformation:
    """Average gradients over the ranks of ``comm`` (the learners)."""
    from mpi4py import MPI

    n = comm.Get_size()

    def host_mean(*leaves):
        flat = np.concatenate([np.asarray(x, np.float64).ravel() for x in leaves])
        total = np.empty_like(flat)
        comm.Reduce(flat, total, op=MPI.SUM, root=0)  # one summation order, on learner 0
        comm.Bcast(total, root=0)
        total /= n
        out, offset = [], 0
        for x in leaves:
            out.append(total[offset:offset + x.size].reshape(x.shape).astype(x.dtype))
            offset += x.size
        return tuple(out)

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        leaves, treedef = jax.tree_util.tree_flatten(updates)
        shapes = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves)
        mean = io_callback(host_mean, shapes, *leaves, ordered=True)
        return jax.tree_util.tree_unflatten(treedef, list(mean)), state

    return optax.GradientTransformation(init, update)
