"""Sequence training for step-form recurrent models (recurrent form 2).

A recurrent actor is written in the seed's step form: its state is a named input that it
also returns as an output (``input_name = ('pos', 'hidden1', 'hidden2')`` with
``output_info`` holding ``hidden1`` and ``hidden2``). Any Keras recurrent layer works that
way: an LSTM over a length-1 sequence with ``return_state=True`` is one cell step.

:func:`unroll` runs such a model over ``(B, L)`` windows with ``lax.scan``: it starts from
the state stored with the window's first step, zeroes the state at every episode start
inside the window (so state never crosses an episode boundary), and runs the first
``burn_in`` steps without gradient (they only warm up the state).
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from aquaml.model.contract import ModelSpec


def episode_starts(terminated: jax.Array, truncated: jax.Array) -> jax.Array:
    """``(B, L)`` flags: step ``t`` begins a new episode because step ``t - 1`` ended one.

    The first step of a window is never flagged: its stored state is already right.
    """
    done = jnp.maximum(terminated, truncated)
    return jnp.concatenate([jnp.zeros_like(done[:, :1]), done[:, :-1]], axis=1) > 0


def unroll(spec: ModelSpec, net_params, obs: Mapping[str, jax.Array], starts: jax.Array,
           burn_in: int = 0) -> dict[str, jax.Array]:
    """Outputs of ``spec``'s model at every step of ``(B, L)`` windows.

    Args:
        obs: ``name -> (B, L, ...)`` for every model input; state inputs are read only at
            ``t = 0`` (the stored state), afterwards the model's own outputs are fed back.
        starts: ``(B, L)`` episode-start flags (:func:`episode_starts`); the state is reset
            to zeros before those steps.
        burn_in: leading steps computed without gradient.

    Returns ``name -> (B, L, ...)`` for every output, states included (each step's output
    state, i.e. the state *after* that step).
    """
    state_names = tuple(spec.state_outputs)
    state = {k: obs[k][:, 0] for k in state_names}
    step_inputs = {k: jnp.swapaxes(v, 0, 1) for k, v in obs.items() if k not in state_names}
    names = tuple(spec.output_info)

    def step(params, state, x):
        inputs, start = x
        state = {k: jnp.where(start.reshape(-1, *([1] * (v.ndim - 1))), 0.0, v) for k, v in state.items()}
        out = spec.fn.apply(params, {**inputs, **state})
        out = dict(zip(names, out if isinstance(out, (tuple, list)) else (out,)))
        return {k: out[k] for k in state_names}, out

    starts_t = jnp.swapaxes(starts, 0, 1)
    if burn_in:
        frozen = jax.lax.stop_gradient(net_params)
        head = jax.tree_util.tree_map(lambda v: v[:burn_in], (step_inputs, starts_t))
        state, warm = jax.lax.scan(lambda c, x: step(frozen, c, x), state, head)
        state = jax.lax.stop_gradient(state)
        tail = jax.tree_util.tree_map(lambda v: v[burn_in:], (step_inputs, starts_t))
        _, rest = jax.lax.scan(lambda c, x: step(net_params, c, x), state, tail)
        outputs = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([jax.lax.stop_gradient(a), b]), warm, rest)
    else:
        _, outputs = jax.lax.scan(lambda c, x: step(net_params, c, x), state, (step_inputs, starts_t))
    return {k: jnp.swapaxes(v, 0, 1) for k, v in outputs.items()}


def weighted_mean(x: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean over the steps whose weight is 1: padded and burn-in steps (weight 0) carry no loss."""
    return jnp.sum(weights * x) / jnp.maximum(jnp.sum(weights), 1.0)


def flat(tree, n: int):
    """Merge the two leading axes ``(B, L, ...) -> (B * L, ...)``."""
    return jax.tree_util.tree_map(lambda x: x.reshape(n, *x.shape[2:]), tree)
