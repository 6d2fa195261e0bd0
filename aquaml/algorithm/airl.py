"""Adversarial inverse reinforcement learning (Fu et al. 2018) with a SAC or PPO generator.

The discriminator is ``D = exp(f) / (exp(f) + pi(a|s))`` with
``f(s, a, s') = g(s, a) + gamma (1 - terminated) h(s') - h(s)``: ``g`` (role
``'discriminator'``) is the learned reward, ``h`` (role ``'shaping'``, reads the observations)
a potential. Its logit is ``f - log pi(a|s)`` under the current actor. SAC learns from ``f``
(its entropy bonus supplies the ``-log pi`` term of AIRL's ``log D - log(1 - D)``): SAC maximises
``E sum_t gamma^t (r_t - alpha log pi(a_t|s_t))``, which with ``r = f`` is AIRL's objective
``E sum_t gamma^t (f - log pi)`` at temperature ``alpha = 1`` (``auto_alpha=False``); the default
starts there and tunes it, which measured stable where the fixed temperature was not
(:class:`~aquaml.algorithm.builtin_parameters.AIRLParameters`). PPO (``airl_ppo``, or ``--set
generator=ppo``) learns from the whole logit. The reward model ``g`` is saved with every
checkpoint as ``models/discriminator.weights.h5``.
"""
from __future__ import annotations

from typing import ClassVar, Mapping

import jax

from aquaml.algorithm.adversarial import Adversarial, AdversarialRollouts, discriminator_inputs, logits_of
from aquaml.algorithm.builtin_parameters import AIRLParameters, AIRLPPOParameters
from aquaml.algorithm.ppo import PPO
from aquaml.algorithm.registry import BUILTINS
from aquaml.algorithm.sac import SAC


class AIRLDiscriminator:
    """AIRL's discriminator structure, placed before the adversarial mixin; the generator
    provides ``log_prob_of(state, obs, action)``."""

    disc_roles: ClassVar[tuple[str, ...]] = ("discriminator", "shaping")
    dataset_roles: ClassVar[tuple[str, ...]] = ("discriminator", "shaping", "actor")  #: log pi(a_E|s_E)
    input_kinds: ClassVar[dict[str, str]] = {"discriminator": "discriminator", "shaping": "state"}
    generators: ClassVar[Mapping[str, str]] = BUILTINS["airl"].generators  #: ``--set generator=...``

    def __init__(self, params, models, action_space=None) -> None:
        recurrent = [role for role in ("actor", *self.disc_roles) if models[role].state_outputs]
        if recurrent:
            raise ValueError(f"airl: the {recurrent[0]} model {type(models[recurrent[0]].model).__name__} is "
                             "recurrent; AIRL's logit needs log pi(a|s) and g of single expert transitions, so its "
                             "actor and reward models are feed-forward (gail trains recurrent ones)")
        super().__init__(params, models, action_space)

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

    def disc_logits(self, disc, gen_state, batch) -> jax.Array:
        return self.shaped_reward(disc, batch) - self.log_prob_of(gen_state, batch["obs"], batch["action"])


class AIRL(AIRLDiscriminator, Adversarial, SAC):
    """AIRL with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator`` (g), ``shaping`` (h)."""

    name: ClassVar[str] = "airl"
    Parameters: ClassVar[type] = AIRLParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator", "shaping")

    def generator_reward(self, disc, gen_state, batch, logit: jax.Array) -> jax.Array:
        return self.shaped_reward(disc, batch)


class AIRLPPO(AIRLDiscriminator, AdversarialRollouts, PPO):
    """AIRL with a PPO generator: roles ``actor``, ``critic``, ``discriminator`` (g), ``shaping`` (h)."""

    name: ClassVar[str] = "airl_ppo"
    Parameters: ClassVar[type] = AIRLPPOParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("critic", "discriminator", "shaping")
