"""Adversarial motion priors (Peng et al. 2021): a least-squares discriminator on state
transitions whose style reward is mixed with the task reward.

The discriminator (default input ``('obs', 'next_obs')``) is pushed towards +1 on expert
transitions and -1 on the agent's, with the gradient penalty ``(w_gp / 2) E |d D / d x|^2`` on
the expert inputs (Peng et al. 2021, eq. 8: ``gradient_penalty = 10`` is the paper's 10); the style
reward is ``max(0, 1 - 0.25 (D - 1)^2)`` and the generator (SAC) learns from
``task_reward_weight * r_env + style_reward_weight * r_style``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax

from aquaml.algorithm.adversarial import Adversarial
from aquaml.algorithm.gail import GAILParameters
from aquaml.algorithm.sac import SAC


@dataclass
class AMPParameters(GAILParameters):
    """GAIL's parameters with AMP's loss, reward and weights. ``gradient_penalty`` is the paper's
    ``w_gp``: the discriminator's loss adds ``(w_gp / 2) * mean |d D / d x|^2`` on expert inputs."""

    DISCRIMINATOR_LOSS: ClassVar[str] = "least_squares"

    reward: str = "amp"
    gradient_penalty: float = 10.0  #: ``w_gp`` of Peng et al. 2021, eq. 8 (penalty ``w_gp / 2 * E|grad D|^2``)
    task_reward_weight: float = 0.5
    style_reward_weight: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward != "amp":
            raise ValueError(f"AMPParameters.reward must be 'amp' (the style reward), got {self.reward!r}")
        for name in ("task_reward_weight", "style_reward_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"AMPParameters.{name} must be >= 0, got {getattr(self, name)}")


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
