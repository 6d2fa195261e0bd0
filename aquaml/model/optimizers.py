"""Optimizers named the Keras way, built as optax transformations."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar

import optax

#: a transformation applied to the gradients before every optimizer built meanwhile
_gradient_transform: ContextVar[optax.GradientTransformation | None] = ContextVar("gradient_transform", default=None)

OPTIMIZERS = {
    "adam": optax.adam,
    "adamw": optax.adamw,
    "sgd": optax.sgd,
    "rmsprop": optax.rmsprop,
}
NAMES = ("Adam", "AdamW", "SGD", "RMSprop")


@contextlib.contextmanager
def gradients_transformed_by(transform: optax.GradientTransformation | None):
    """Every optimizer made inside this block first applies ``transform`` (e.g. averaging over learners).

    A ``transform`` with a ``tree_sum`` attribute (:func:`aquaml.parallel.data_parallel.mean_across`)
    also offers it to algorithms built in the block (:func:`learner_sum`).
    """
    token = _gradient_transform.set(transform)
    try:
        yield
    finally:
        _gradient_transform.reset(token)


def learner_sum():
    """The sum of a pytree over the data-parallel learners, usable inside jit, as the
    transformation of the enclosing :func:`gradients_transformed_by` block offers it
    (``mean_across(comm).tree_sum``); None outside such a block (one learner).

    Algorithms read it when they are built, for learner state that is not a gradient
    (PPO's running statistics), so the starter's one context covers both.
    """
    return getattr(_gradient_transform.get(), "tree_sum", None)


def make_optimizer(spec, learning_rate: float, owner: str = "model") -> optax.GradientTransformation:
    """``'Adam'``, ``'AdamW'``, ``'SGD'``, ``'RMSprop'`` (any case) or a ready optax transformation."""
    if isinstance(spec, optax.GradientTransformation):
        tx = spec
    elif isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        tx = OPTIMIZERS[spec.lower()](float(learning_rate))
    else:
        raise ValueError(
            f"{owner}.optimizer = {spec!r} is not a known optimizer; use one of {', '.join(NAMES)} "
            "or an optax.GradientTransformation"
        )
    before = _gradient_transform.get()
    return tx if before is None else optax.chain(before, tx)

