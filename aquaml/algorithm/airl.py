"""Adversarial inverse reinforcement learning (Fu et al. 2018) with a SAC generator.

The discriminator is ``D = exp(f) / (exp(f) + pi(a|s))`` with
``f(s, a, s') = g(s, a) + gamma (1 - terminated) h(s') - h(s)``: ``g`` (role
``'discriminator'``) is the learned reward, ``h`` (role ``'shaping'``, reads the observations)
a potential. Its logit is ``f - log pi(a|s)`` under the current actor. SAC learns from ``f``
(its entropy bonus supplies the ``-log pi`` term of AIRL's ``log D - log(1 - D)``). The reward
model ``g`` is saved with every checkpoint as ``models/discriminator.weights.h5``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from aquaml.algorithm.adversarial import Adversarial, discriminator_inputs, logits_of
from aquaml.algorithm.gail import GAILParameters
from aquaml.algorithm.sac import SAC
from aquaml.model.distributions import squashed_gaussian_log_prob

ACTION_EDGE = 1.0 - 1e-6  # actions at the bounds +-1 are moved inside for atanh


@dataclass
class AIRLParameters(GAILParameters):
    """GAIL's parameters; AIRL's logit is fixed by its structure."""

    gradient_penalty: float = 0.0


class AIRL(Adversarial, SAC):
    """AIRL with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator`` (g), ``shaping`` (h)."""

    name: ClassVar[str] = "airl"
    Parameters: ClassVar[type] = AIRLParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator", "shaping")
    disc_roles: ClassVar[tuple[str, ...]] = ("discriminator", "shaping")
    dataset_roles: ClassVar[tuple[str, ...]] = ("discriminator", "shaping", "actor")  #: log pi(a_E|s_E)
    input_kinds: ClassVar[dict[str, str]] = {"discriminator": "discriminator", "shaping": "state"}

    @property
    def reward_kind(self) -> str:
        return "logit"

    def shaped_reward(self, disc, batch) -> jax.Array:
        """``f(s, a, s') = g(s, a) + gamma (1 - terminated) h(s') - h(s)``."""
        g_spec, h_spec = self.disc_specs["discriminator"], self.disc_specs["shaping"]
        g = logits_of(g_spec, disc["discriminator"], discriminator_inputs(g_spec, batch))
        h = logits_of(h_spec, disc["shaping"], {k: batch["obs"][k] for k in h_spec.input_names})
        h_next = logits_of(h_spec, disc["shaping"], {k: batch["next_obs"][k] for k in h_spec.input_names})
        return g + self.params.discount * (1.0 - batch["terminated"]) * h_next - h

    def log_pi(self, gen_state, batch) -> jax.Array:
        """``log pi(a|s)`` of the batch's actions under the current actor (no gradient)."""
        actor = jax.lax.stop_gradient(gen_state.actor)
        n = batch["reward"].shape[0]
        outputs = self.policy.outputs(actor["net"], batch["obs"])
        mean, log_std = self.policy.dist(actor, outputs)
        u = jnp.arctanh(jnp.clip(batch["action"].reshape(n, -1), -ACTION_EDGE, ACTION_EDGE))
        return squashed_gaussian_log_prob(u, mean, log_std)

    def disc_logits(self, disc, gen_state, batch) -> jax.Array:
        return self.shaped_reward(disc, batch) - self.log_pi(gen_state, batch)

    def generator_reward(self, disc, gen_state, batch, logit: jax.Array) -> jax.Array:
        return self.shaped_reward(disc, batch)
