"""GAIL (Ho and Ermon 2016) with an off-policy generator (Kostrikov et al.'s
Discriminator-Actor-Critic) or PPO.

A ``'discriminator'`` model scores transitions (by default it reads the observations and the
``action``; ``input_name = ('obs', 'next_obs')`` imitates from states alone); the generator
learns from its imitation reward, by default the logit ``log D - log(1 - D)``. ``gail`` trains
SAC, ``gail_ppo`` (``aquaml train gail ENV --set generator=ppo``) PPO. See
:mod:`aquaml.algorithm.adversarial` for the updates and the handling of episode ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aquaml.algorithm.adversarial import Adversarial, AdversarialParameters, AdversarialRollouts
from aquaml.algorithm.parameters import check_positive
from aquaml.algorithm.ppo import PPO, PPOParameters
from aquaml.algorithm.sac import SAC, SACParameters


@dataclass
class GAILParameters(AdversarialParameters, SACParameters):
    """SAC's parameters plus the expert data and the discriminator's settings. With
    ``sequence_length`` both the agent's and the expert's batches are windows of consecutive
    steps: a recurrent actor and a recurrent discriminator each unroll over them (the
    discriminator from zero state; ``burn_in`` leading steps only warm up the states: they carry
    no discriminator or SAC loss)."""


@dataclass
class GAILPPOParameters(AdversarialParameters, PPOParameters):
    """PPO's parameters plus the expert data and the discriminator's settings. Each rollout
    trains the discriminator ``discriminator_epochs`` passes over its steps in minibatches of
    ``batch_size``, each against ``batch_size`` expert transitions. A recurrent actor trains
    over windows as in PPO (``sequence_length``, ``burn_in``); the discriminator scores single
    transitions."""

    discriminator_epochs: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "discriminator_epochs")


class GAIL(Adversarial, SAC):
    """GAIL with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator``."""

    name: ClassVar[str] = "gail"
    Parameters: ClassVar[type] = GAILParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator")
    generators: ClassVar[dict[str, str]] = {"sac": "gail", "ppo": "gail_ppo"}  #: ``--set generator=...``


class GAILPPO(AdversarialRollouts, PPO):
    """GAIL with a PPO generator: roles ``actor``, ``critic``, ``discriminator``; continuous or
    discrete actions (a discrete action reaches the discriminator one-hot)."""

    name: ClassVar[str] = "gail_ppo"
    Parameters: ClassVar[type] = GAILPPOParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("critic", "discriminator")
    generators: ClassVar[dict[str, str]] = GAIL.generators
