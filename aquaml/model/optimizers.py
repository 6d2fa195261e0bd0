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
    """Every optimizer made inside this block first applies ``transform`` (e.g. averaging over learners)."""
    token = _gradient_transform.set(transform)
    try:
        yield
    finally:
        _gradient_transform.reset(token)


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

