"""What on-policy algorithms share: returns, advantages and rollout layouts, as pure functions.

A rollout is step-major, ``(T, N, ...)`` for ``T`` steps of ``N`` environments. PPO uses all
of these; an algorithm of your own (``examples/a2c.py``) can too.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from aquaml.data import normalizer
from aquaml.model.contract import ModelSpec
from aquaml.model.recurrent import episode_starts, unroll


def scale_rewards(rewards, done, returns, return_stats: dict, discount: float,
                  tree_sum: Callable | None = None):
    """Rewards divided by the running std of each env's discounted return (SB3's VecNormalize).

    Args:
        rewards, done: ``(T, N)``; ``done`` ends an episode (terminated or truncated).
        returns: ``(N,)`` each env's running discounted return before the rollout.
        return_stats: running statistics ``{'r': ...}`` of the returns seen so far.
        tree_sum: data-parallel learners' sum: the statistics then take in every learner's returns.

    Returns ``(scaled rewards, new return_stats, new running returns)``: the statistics are
    first updated with the rollout's returns, which then scale its rewards.
    """
    def step(ret, x):
        reward, d = x
        ret = ret * discount + reward
        return ret * (1.0 - d), ret

    returns, seen = jax.lax.scan(step, returns, (rewards, done))
    stats = normalizer.update_stats(return_stats, {"r": seen}, tree_sum)
    return rewards / jnp.sqrt(stats["var"]["r"] + normalizer.EPS), stats, returns


def gae(rewards, values, next_values, terminated, truncated, discount: float, lam: float):
    """Generalised advantage estimates and returns over ``(T, N)`` arrays.

    ``next_values[t]`` is the value of the observation reached at step ``t`` (the true last
    observation when the episode was truncated there). Terminations stop bootstrapping;
    terminations and truncations both stop the advantage recursion.
    """
    deltas = rewards + discount * (1.0 - terminated) * next_values - values
    continues = 1.0 - jnp.maximum(terminated, truncated)

    def step(next_adv, x):
        delta, cont = x
        adv = delta + discount * lam * cont * next_adv
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True)
    return adv, adv + values


def advantages(value: Callable, critic, obs_stats: dict | None, obs, next_obs, rewards, terminated, truncated,
               discount: float, lam: float):
    """Normalised observations, values, GAE advantages and returns of a ``(T, N)`` rollout.

    Args:
        value: ``value(critic, obs) -> (B,)`` for a batch of observations.
        obs_stats: the statistics the rollout was collected with (None: no normalisation).
        obs, next_obs: ``name -> (T, N, ...)``.

    Returns ``(obs, values, advantages, returns)``: ``obs`` normalised, ``name -> (T, N, ...)``;
    the others ``(T, N)``.
    """
    T, N = rewards.shape
    flat = lambda tree: jax.tree_util.tree_map(lambda x: x.reshape(T * N, *x.shape[2:]), tree)  # noqa: E731
    obs, next_obs = flat(obs), flat(next_obs)
    if obs_stats is not None:
        obs, next_obs = normalizer.normalize(obs_stats, obs), normalizer.normalize(obs_stats, next_obs)
    values = value(critic, obs).reshape(T, N)
    next_values = value(critic, next_obs).reshape(T, N)
    adv, returns = gae(rewards, values, next_values, terminated, truncated, discount, lam)
    return jax.tree_util.tree_map(lambda x: x.reshape(T, N, *x.shape[1:]), obs), values, adv, returns


def windows(x: jax.Array, length: int) -> jax.Array:
    """``(T, N, ...)`` step-major -> ``(N * T / length, length, ...)``: windows of consecutive
    steps of one env, env 0's windows first, each env's in time order."""
    return jnp.swapaxes(x, 0, 1).reshape(-1, length, *x.shape[2:])


def rollout_windows(data, terminated, truncated, length: int):
    """:func:`windows` of every ``(T, N, ...)`` leaf of ``data``, plus ``'starts'``: ``(W, length)``
    episode-start flags (:func:`aquaml.model.recurrent.episode_starts`; a window's first step
    is never flagged: its stored state is right). ``length`` 1 gives single steps."""
    out = jax.tree_util.tree_map(lambda x: windows(x, length), data)
    out["starts"] = episode_starts(windows(terminated, length), windows(truncated, length))
    return out


def burn_in_prefixes(obs_windows, terminated, truncated, starts, windows_per_env: int, burn_in: int):
    """Each window's preceding ``burn_in`` steps of the same env (``burn_in <= window length``).

    Args:
        obs_windows: ``name -> (W, L, ...)`` the windows' inputs (:func:`rollout_windows`).
        terminated, truncated: ``(W, L)`` windows of the flags.
        starts: ``(W, L)`` the windows' episode-start flags.

    Returns ``(prefix, starts)``. ``prefix`` holds ``'obs'`` (``name -> (W, burn_in, ...)``,
    the previous window's last steps, state inputs stored at the burn-in start),
    ``'starts'`` (their episode-start flags) and ``'valid'`` (``(W,)``, False for an env's
    first window, which has no preceding step in the rollout and keeps its stored state).
    ``starts`` is the windows' flags with the first step flagged where the step before the
    window ended an episode (the state refreshed by burn-in must then be reset).
    """
    W, L = starts.shape
    prev = lambda x: jnp.roll(x, 1, axis=0)[:, L - burn_in:]  # noqa: E731  (window w - 1 of the same env)
    valid = jnp.arange(W) % windows_per_env != 0
    done_before = jnp.maximum(terminated, truncated)[:, -1] > 0  # the previous window's last step ended an episode
    starts = starts.at[:, 0].set(valid & jnp.roll(done_before, 1))
    prefix = {"obs": jax.tree_util.tree_map(prev, obs_windows),
              "starts": episode_starts(prev(terminated), prev(truncated)), "valid": valid}
    return prefix, starts


def unroll_windows(spec: ModelSpec, net_params, obs, starts, prefix: dict | None = None) -> dict:
    """The actor's outputs over ``(W, L)`` windows (:func:`aquaml.model.recurrent.unroll`).

    With ``prefix`` (:func:`burn_in_prefixes`), each window's stored initial state is first
    refreshed: the *current* network, without gradient, unrolls the preceding steps from
    the state stored at their start (resetting at episode starts), and the window starts
    from the state reached; windows without preceding steps keep their stored state.
    """
    if prefix is not None:
        warm = unroll(spec, jax.lax.stop_gradient(net_params), prefix["obs"], prefix["starts"])
        obs = dict(obs)
        for k in spec.state_outputs:
            keep = prefix["valid"].reshape(-1, *([1] * (obs[k].ndim - 2)))
            obs[k] = obs[k].at[:, 0].set(jnp.where(keep, jax.lax.stop_gradient(warm[k][:, -1]), obs[k][:, 0]))
    return unroll(spec, net_params, obs, starts)
