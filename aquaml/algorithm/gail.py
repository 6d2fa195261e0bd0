"""GAIL with an off-policy generator (Ho and Ermon 2016; Kostrikov et al.'s Discriminator-Actor-Critic).

A ``'discriminator'`` model scores transitions (by default it reads the observations and the
``action``; ``input_name = ('obs', 'next_obs')`` imitates from states alone); SAC learns from
its imitation reward, by default the logit ``log D - log(1 - D)``. See
:mod:`aquaml.algorithm.adversarial` for the update and the handling of episode ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aquaml.algorithm.adversarial import REWARDS, Adversarial
from aquaml.algorithm.sac import SAC, SACParameters


@dataclass
class GAILParameters(SACParameters):
    """SAC's parameters plus the expert data and the discriminator's settings."""

    dataset: str = ""  #: expert demonstrations (see docs/imitation.md for the formats)
    max_episodes: int | None = None  #: use the dataset's first episodes only
    reward: str = "logit"  #: ``'logit'`` (log D - log(1 - D)), ``'positive'`` (-log(1 - D)), ``'negative'`` (log D)
    gradient_penalty: float = 1.0  #: weight of ``mean |d logit / d x|^2`` on expert inputs (0: off)
    discriminator_learning_rate: float = 3e-4  #: the default discriminator's learning rate

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.reward not in REWARDS and self.reward != "amp":
            raise ValueError(f"{name}.reward = {self.reward!r}; use one of {', '.join(REWARDS)}")
        if self.gradient_penalty < 0:
            raise ValueError(f"{name}.gradient_penalty must be >= 0, got {self.gradient_penalty}")
        if self.max_episodes is not None and self.max_episodes <= 0:
            raise ValueError(f"{name}.max_episodes must be positive, got {self.max_episodes}")
        if self.sequence_length is not None:
            raise ValueError(f"{name}: sequence training of the generator is not available in adversarial "
                             "imitation yet; leave sequence_length and batch_trajectory unset")


class GAIL(Adversarial, SAC):
    """GAIL with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator``."""

    name: ClassVar[str] = "gail"
    Parameters: ClassVar[type] = GAILParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator")
