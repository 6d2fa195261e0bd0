"""Tanh-squashed diagonal Gaussian: sampling and exact log-densities (pure JAX).

With ``u ~ N(mean, exp(log_std))`` and ``a = tanh(u)``, the change of variables gives
``log p(a) = log N(u) - sum log(1 - tanh(u)^2)``. The correction is computed from ``u`` as
``2 (log 2 - u - softplus(-2u))``, which stays finite where ``tanh(u)`` rounds to +-1.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log-density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - _LOG_SQRT_2PI, axis=-1)


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """``sum log(1 - tanh(u)^2)`` over the last axis, computed stably from ``u``."""
    return jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def squashed_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log-density of ``a = tanh(u)`` given the pre-squash sample ``u``."""
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


def squashed_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample ``tanh(mean + std * eps)`` and its log-density."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 + _LOG_SQRT_2PI, axis=-1)


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """``log softmax(logits)[action]`` for integer actions of shape ``logits.shape[:-1]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
