"""Adversarial motion priors (Peng et al. 2021): a least-squares discriminator on state
transitions whose style reward is mixed with the task reward.

The discriminator (default input ``('obs', 'next_obs')``) is pushed towards +1 on expert
transitions and -1 on the agent's, with the gradient penalty ``(w_gp / 2) E |d D / d x|^2`` on
the expert inputs (Peng et al. 2021, eq. 8: ``gradient_penalty = 10`` is the paper's 10); the style
reward is ``max(0, 1 - 0.25 (D - 1)^2)`` and the generator (SAC) learns from
``task_reward_weight * r_env + style_reward_weight * r_style``.
"""
from __future__ import annotations

from typing import ClassVar

import jax

from aquaml.algorithm.adversarial import Adversarial
from aquaml.algorithm.builtin_parameters import AMPParameters
from aquaml.algorithm.sac import SAC


class AMP(Adversarial, SAC):
    """AMP with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator``."""

    name: ClassVar[str] = "amp"
    Parameters: ClassVar[type] = AMPParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator")
    input_kinds: ClassVar[dict[str, str]] = {"discriminator": "state_discriminator"}
    loss: ClassVar[str] = "least_squares"
    gradient_penalty_scale: ClassVar[float] = 0.5  #: eq. 8's ``w_gp / 2``

    def mix_task_reward(self, task_reward: jax.Array, imitation: jax.Array) -> jax.Array:
        p = self.params
        return p.task_reward_weight * task_reward + p.style_reward_weight * imitation
