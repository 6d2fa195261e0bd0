"""Actor heads: tanh-squashed Gaussian (SAC), deterministic (TD3), Gaussian and categorical (PPO),
Gaussian around a bounded mean (BC, IQL).

The actor's ``'action'`` output is the *mean* of a Gaussian whose samples are squashed by
``tanh`` into ``[-1, 1]``. An actor that already ends in ``tanh`` (as the seed's tutorial
does) works, but its mean is squashed twice: the deterministic action is
``tanh(tanh(x))``, within ``[-0.76, 0.76]`` before the environment's scaling. Prefer a
linear last layer. Without a ``'log_std'`` output the policy learns one state-independent
log-std per action dimension.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from aquaml.model.contract import ModelContractError, ModelSpec
from aquaml.model.distributions import (categorical_entropy, categorical_log_prob, gaussian_entropy,
                                        gaussian_log_prob, squashed_gaussian_sample)

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class _ActorHead:
    """Named outputs of an actor model, and the action dict handed to the environment."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.output_names = tuple(spec.output_info)
        self.action_shape = spec.output_info["action"]
        self.action_dim = math.prod(self.action_shape)
        self.state_outputs = spec.state_outputs

    def outputs(self, net_params, obs) -> dict:
        out = self.spec.fn.apply(net_params, obs)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return dict(zip(self.output_names, out))

    def flat_mean(self, outputs) -> jax.Array:
        return outputs["action"].reshape(outputs["action"].shape[0], self.action_dim)

    def action_dict(self, outputs, action) -> dict:
        """Outputs with ``'action'`` replaced by the squashed action, in the action's shape."""
        outputs = dict(outputs)
        outputs["action"] = action.reshape(action.shape[0], *self.action_shape)
        return outputs


class GaussianPolicy(_ActorHead):
    """Diagonal Gaussian on ``params = {'net': [...], 'log_std': ...}`` (PPO).

    Samples are unbounded and kept as ``extras['raw_action']`` for the log-density; the
    environment receives them clipped to ``[-1, 1]``.
    """

    def __init__(self, spec: ModelSpec, log_std_init: float = 0.0) -> None:
        super().__init__(spec)
        self.state_dependent = "log_std" in spec.output_info
        self.log_std_init = float(log_std_init)

    def init_params(self) -> dict:
        params = {"net": self.spec.fn.init_params()}
        if not self.state_dependent:
            params["log_std"] = jnp.full((self.action_dim,), self.log_std_init, jnp.float32)
        return params

    def dist(self, params, outputs) -> tuple[jax.Array, jax.Array]:
        """The flat mean and clipped log-std, each ``(B, action_dim)``, from the actor's outputs."""
        mean = self.flat_mean(outputs)
        if self.state_dependent:
            log_std = outputs["log_std"].reshape(mean.shape)
        else:
            log_std = jnp.broadcast_to(params["log_std"], mean.shape)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, params, obs) -> tuple[dict, jax.Array, jax.Array]:
        """All named outputs, plus the flat mean and clipped log-std."""
        outputs = self.outputs(params["net"], obs)
        return (outputs, *self.dist(params, outputs))

    def log_prob_entropy(self, params, outputs, action, extras) -> tuple[jax.Array, jax.Array]:
        """Log-density of the stored raw action and the entropy, given the actor's outputs."""
        mean, log_std = self.dist(params, outputs)
        return gaussian_log_prob(extras["raw_action"], mean, log_std), gaussian_entropy(log_std)

    def act(self, params, obs, key, deterministic: bool) -> tuple[dict, dict]:
        outputs, mean, log_std = self.forward(params, obs)
        raw = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        extras = {"raw_action": raw, "log_prob": gaussian_log_prob(raw, mean, log_std)}
        return self.action_dict(outputs, jnp.clip(raw, -1.0, 1.0)), extras


class SquashedGaussianPolicy(GaussianPolicy):
    """Gaussian samples squashed by ``tanh`` into ``[-1, 1]`` (SAC); the log-density is exact."""

    def sample(self, params, obs, key, outputs: dict | None = None) -> tuple[jax.Array, jax.Array, dict]:
        """A squashed action ``(B, action_dim)``, its log-density ``(B,)`` and all outputs.

        ``outputs``: the actor's outputs if already computed (e.g. by a sequence unroll).
        """
        if outputs is None:
            outputs = self.outputs(params["net"], obs)
        action, log_prob = squashed_gaussian_sample(key, *self.dist(params, outputs))
        return action, log_prob, outputs

    def act(self, params, obs, key, deterministic: bool) -> tuple[dict, dict]:
        """The action dict handed to the environment: outputs with ``'action'`` squashed."""
        if deterministic:
            outputs, mean, _ = self.forward(params, obs)
            action = jnp.tanh(mean)
        else:
            action, _, outputs = self.sample(params, obs, key)
        return self.action_dict(outputs, action), {}


class BoundedGaussianPolicy(GaussianPolicy):
    """A Gaussian in action space around ``tanh(mean)`` (BC, IQL).

    The log-likelihood of a dataset action is exact and finite at the bounds ``+-1``, where
    experts often act (a squashed Gaussian's density needs ``atanh(a)``, infinite there).
    The deterministic action is ``tanh(mean)``, as for SAC's actor; samples are clipped to
    ``[-1, 1]``.
    """

    def dist(self, params, outputs) -> tuple[jax.Array, jax.Array]:
        mean, log_std = super().dist(params, outputs)
        return jnp.tanh(mean), log_std

    def log_prob(self, params, outputs, action: jax.Array) -> jax.Array:
        """``log N(action; tanh(mean), std)`` per sample, ``action`` shaped ``(B, action_dim)``."""
        mean, log_std = self.dist(params, outputs)
        return gaussian_log_prob(action, mean, log_std)

    def act(self, params, obs, key, deterministic: bool) -> tuple[dict, dict]:
        outputs, mean, log_std = self.forward(params, obs)
        action = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        return self.action_dict(outputs, jnp.clip(action, -1.0, 1.0)), {}


class CategoricalPolicy(_ActorHead):
    """Discrete actions: the actor's ``'action'`` output holds ``(n,)`` logits."""

    def init_params(self) -> dict:
        return {"net": self.spec.fn.init_params()}

    def log_prob_entropy(self, params, outputs, action, extras) -> tuple[jax.Array, jax.Array]:
        """Log-probability of ``action`` and the entropy, given the actor's outputs."""
        logits = self.flat_mean(outputs)
        return categorical_log_prob(logits, action), categorical_entropy(logits)

    def act(self, params, obs, key, deterministic: bool) -> tuple[dict, dict]:
        outputs = self.outputs(params["net"], obs)
        logits = self.flat_mean(outputs)
        action = jnp.argmax(logits, axis=-1) if deterministic else jax.random.categorical(key, logits)
        outputs = dict(outputs)
        outputs["action"] = action
        return outputs, {"log_prob": categorical_log_prob(logits, action)}


class DeterministicPolicy(_ActorHead):
    """``action = tanh(mean)``; exploration adds clipped-to-range Gaussian noise (TD3, DDPG)."""

    def __init__(self, spec: ModelSpec, exploration_noise: float) -> None:
        if "log_std" in spec.output_info:
            raise ModelContractError(
                f"actor model {type(spec.model).__name__}: output 'log_std' has no use in a deterministic "
                "policy (TD3/DDPG); remove it from output_info and call()")
        super().__init__(spec)
        self.exploration_noise = float(exploration_noise)

    def init_params(self) -> dict:
        return {"net": self.spec.fn.init_params()}

    def action(self, params, obs) -> tuple[jax.Array, dict]:
        """The squashed action ``(B, action_dim)`` and all outputs."""
        outputs = self.outputs(params["net"], obs)
        return jnp.tanh(self.flat_mean(outputs)), outputs

    def act(self, params, obs, key, deterministic: bool) -> tuple[dict, dict]:
        action, outputs = self.action(params, obs)
        if not deterministic:
            noise = self.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
            action = jnp.clip(action + noise, -1.0, 1.0)
        return self.action_dict(outputs, action), {}


def action_field(policy) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one environment's ``'action'``: an index for a categorical policy,
    else a float vector in ``[-1, 1]``."""
    if isinstance(policy, CategoricalPolicy):
        return (), np.dtype(np.int64)
    return policy.action_shape, np.dtype(np.float32)


def random_actions(policy, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random actions of the policy's kind (warm-up steps)."""
    if isinstance(policy, CategoricalPolicy):
        return rng.integers(0, policy.action_dim, n)
    return rng.uniform(-1.0, 1.0, (n, *policy.action_shape)).astype(np.float32)
