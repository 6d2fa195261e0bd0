"""GAIL (Ho and Ermon 2016) with an off-policy generator (Kostrikov et al.'s
Discriminator-Actor-Critic) or PPO.

A ``'discriminator'`` model scores transitions (by default it reads the observations and the
``action``; ``input_name = ('obs', 'next_obs')`` imitates from states alone); the generator
learns from its imitation reward, by default the logit ``log D - log(1 - D)``. ``gail`` trains
SAC, ``gail_ppo`` (``aquaml train gail ENV --set generator=ppo``) PPO. See
:mod:`aquaml.algorithm.adversarial` for the updates and the handling of episode ends.
"""
from __future__ import annotations

from typing import ClassVar, Mapping

from aquaml.algorithm.adversarial import Adversarial, AdversarialRollouts
from aquaml.algorithm.builtin_parameters import GAILParameters, GAILPPOParameters
from aquaml.algorithm.ppo import PPO
from aquaml.algorithm.registry import BUILTINS
from aquaml.algorithm.sac import SAC


class GAIL(Adversarial, SAC):
    """GAIL with a SAC generator: roles ``actor``, ``qf1``, ``qf2``, ``discriminator``."""

    name: ClassVar[str] = "gail"
    Parameters: ClassVar[type] = GAILParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "discriminator")
    generators: ClassVar[Mapping[str, str]] = BUILTINS["gail"].generators  #: ``--set generator=...``


class GAILPPO(AdversarialRollouts, PPO):
    """GAIL with a PPO generator: roles ``actor``, ``critic``, ``discriminator``; continuous or
    discrete actions (a discrete action reaches the discriminator one-hot)."""

    name: ClassVar[str] = "gail_ppo"
    Parameters: ClassVar[type] = GAILPPOParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("critic", "discriminator")
    generators: ClassVar[Mapping[str, str]] = GAIL.generators
