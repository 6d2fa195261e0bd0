"""TD3+BC (Fujimoto and Gu 2021): TD3 from a dataset, the actor kept near the data's actions.

The critics learn exactly as in TD3 (twin critics, target policy smoothing, delayed actor
and target updates). The actor minimises

    ``-lambda * mean_i Q1(s_i, pi(s_i)) + mean_{i,j} (pi(s_i)_j - a_ij)^2``,
    ``lambda = alpha / mean_i |Q1(s_i, pi(s_i))|``

(``lambda`` without gradient), on observations standardised with the dataset's statistics. The
cloning term averages over the batch *and* the action dimensions, as the reference
implementation's ``F.mse_loss(pi, a)`` does, so ``alpha`` weighs the Q term against it the same
way whatever the action dimension.
"""
from __future__ import annotations

from typing import ClassVar, Mapping

import jax
import jax.numpy as jnp

from aquaml.algorithm.off_policy import OffPolicyAlgorithm
from aquaml.algorithm.offline import OfflineAlgorithm
from aquaml.algorithm.builtin_parameters import TD3BCParameters
from aquaml.algorithm.td3 import TD3
from aquaml.model.contract import ModelSpec
from aquaml.model.policy import DeterministicPolicy


def td3bc_actor_loss(q: jax.Array, policy_action: jax.Array, data_action: jax.Array, alpha: float) -> jax.Array:
    """``-alpha / mean|Q| * mean Q + mean (pi - a)^2``, the squared action error averaged over
    the batch and the action dimensions (Fujimoto and Gu's ``F.mse_loss``)."""
    lam = jax.lax.stop_gradient(alpha / jnp.mean(jnp.abs(q)))
    return -lam * jnp.mean(q) + jnp.mean((policy_action - data_action) ** 2)


class TD3BC(OfflineAlgorithm, TD3):
    """TD3+BC on checked models: a deterministic ``actor`` and critics ``qf1``, ``qf2``."""

    name: ClassVar[str] = "td3bc"
    Parameters: ClassVar[type] = TD3BCParameters

    def __init__(self, params: TD3BCParameters, models: Mapping[str, ModelSpec], action_space=None) -> None:
        OffPolicyAlgorithm.__init__(self, params, models, DeterministicPolicy(models["actor"], 0.0))

    def _actor_loss(self, actor, critics, batch) -> jax.Array:
        obs = batch["obs"]
        action = self.policy.action(actor, obs)[0]
        q = self.critics.q(0, critics[0], obs, action)
        return td3bc_actor_loss(q, action, batch["action"].reshape(action.shape), self.params.alpha)
