"""Data-parallel learners: every learner's gradients are averaged over MPI before each step.

:func:`mean_across` is an optax transformation placed first in every optimizer of a learner
(through :func:`aquaml.model.optimizers.gradients_transformed_by`), so each algorithm's single
compiled update stays one call: inside it, a host callback sums the gradients of all
learners on learner 0 (in float64) and broadcasts the mean. Every learner therefore applies
bit-identical updates and, starting from the same seed, keeps bit-identical parameters.

Learner state that is not a gradient (PPO's running observation and return statistics)
goes through the same collective: the transformation also carries ``tree_sum``, which :func:`aquaml.model.optimizers.learner_sum` hands to an algorithm built
inside the same ``gradients_transformed_by`` block. The starter's one context is thus
enough for everything a learner must share.

The callbacks are *ordered*: a learner's several optimizers (critics, actor, temperature)
and statistics reach the collective in the same order on every learner.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np
import optax
from jax.experimental import io_callback

from aquaml.tools.imports import optional_import


class LearnerMean(optax.GradientTransformation):
    """What :func:`mean_across` returns: an optax transformation (``init``, ``update``) that
    averages gradients, with ``tree_sum`` (pytree -> pytree, usable inside
    jit) attached for other state the learners must share."""

    tree_sum: Callable


def _host_reduce(comm, divisor: int):
    """A host function summing its leaves over ``comm`` (in float64, in one order, on rank 0,
    then broadcast) and dividing by ``divisor``: the same bits on every rank."""
    MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

    def host(*leaves):
        flat = np.concatenate([np.asarray(x, np.float64).ravel() for x in leaves])
        total = np.empty_like(flat)
        comm.Reduce(flat, total, op=MPI.SUM, root=0)  # one summation order, on learner 0
        comm.Bcast(total, root=0)
        if divisor != 1:
            total /= divisor
        out, offset = [], 0
        for x in leaves:
            out.append(total[offset:offset + x.size].reshape(x.shape).astype(x.dtype))
            offset += x.size
        return tuple(out)

    return host


def _collective(host) -> Callable:
    """``tree -> tree`` through an ordered host callback running ``host`` on the leaves."""

    def apply(tree):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        leaves = [jax.numpy.asarray(x) for x in leaves]
        shapes = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves)
        out = io_callback(host, shapes, *leaves, ordered=True)
        return jax.tree_util.tree_unflatten(treedef, list(out))

    return apply


def mean_across(comm) -> LearnerMean:
    """Average gradients over the ranks of ``comm`` (the learners); also offers ``tree_sum``
    over them."""
    tree_mean = _collective(_host_reduce(comm, comm.Get_size()))

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        return tree_mean(updates), state

    tx = LearnerMean(init, update)
    tx.tree_sum = _collective(_host_reduce(comm, 1))
    return tx
