"""Optimizers named the Keras way, built as optax transformations."""
from __future__ import annotations

import optax

OPTIMIZERS = {
    "adam": optax.adam,
    "adamw": optax.adamw,
    "sgd": optax.sgd,
    "rmsprop": optax.rmsprop,
}
NAMES = ("Adam", "AdamW", "SGD", "RMSprop")


def make_optimizer(spec, learning_rate: float, owner: str = "model") -> optax.GradientTransformation:
    """``'Adam'``, ``'AdamW'``, ``'SGD'``, ``'RMSprop'`` (any case) or a ready optax transformation."""
    if isinstance(spec, optax.GradientTransformation):
        return spec
    if isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        return OPTIMIZERS[spec.lower()](float(learning_rate))
    raise ValueError(
        f"{owner}.optimizer = {spec!r} is not a known optimizer; use one of {', '.join(NAMES)} "
        "or an optax.GradientTransformation"
    )
