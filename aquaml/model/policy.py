"""The actor model with a tanh-squashed Gaussian head.

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

from aquaml.model.contract import ModelSpec
from aquaml.model.distributions import squashed_gaussian_sample

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class SquashedGaussianPolicy:
    """Pure functions of ``params = {'net': [...], 'log_std': ...}`` for one actor model."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.output_names = tuple(spec.output_info)
        self.action_shape = spec.output_info["action"]
        self.action_dim = math.prod(self.action_shape)
        self.state_dependent = "log_std" in spec.output_info
        self.state_outputs = spec.state_outputs

    def init_params(self) -> dict:
        params = {"net": self.spec.fn.init_params()}
        if not self.state_dependent:
            params["log_std"] = jnp.zeros((self.action_dim,), jnp.float32)
        return params

    def forward(self, params, obs) -> tuple[dict, jax.Array, jax.Array]:
        """All named outputs, plus the flat mean and clipped log-std, each ``(B, action_dim)``."""
        out = self.spec.fn.apply(params["net"], obs)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        outputs = dict(zip(self.output_names, out))
        batch = outputs["action"].shape[0]
        mean = outputs["action"].reshape(batch, self.action_dim)
        if self.state_dependent:
            log_std = outputs["log_std"].reshape(batch, self.action_dim)
        else:
            log_std = jnp.broadcast_to(params["log_std"], mean.shape)
        return outputs, mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, params, obs, key) -> tuple[jax.Array, jax.Array, dict]:
        """A squashed action ``(B, action_dim)``, its log-density ``(B,)`` and all outputs."""
        outputs, mean, log_std = self.forward(params, obs)
        action, log_prob = squashed_gaussian_sample(key, mean, log_std)
        return action, log_prob, outputs

    def act(self, params, obs, key, deterministic: bool) -> dict:
        """The action dict handed to the environment: outputs with ``'action'`` squashed."""
        if deterministic:
            outputs, mean, _ = self.forward(params, obs)
            action = jnp.tanh(mean)
        else:
            action, _, outputs = self.sample(params, obs, key)
        outputs = dict(outputs)
        outputs["action"] = action.reshape(action.shape[0], *self.action_shape)
        return outputs
