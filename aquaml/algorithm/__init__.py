"""Algorithms: each a parameter dataclass plus pure, jitted update functions.

:class:`~aquaml.algorithm.interface.Algorithm` states what the training loop needs from one;
``docs/new_algorithm.md`` writes a new one outside the package.
"""
from aquaml.algorithm.parameters import (LoopParameters, OfflineParameters, OffPolicyParameters, OnPolicyParameters,
                                         Parameters, SequenceParameters)
from aquaml.algorithm.interface import Algorithm
from aquaml.algorithm.sac import SAC, SAC2, SAC2_parameter, SACParameters, SACState, soft_td_target
from aquaml.algorithm.td3 import TD3, TD3Parameters, TD3State, td3_target
from aquaml.algorithm.on_policy import gae
from aquaml.algorithm.ppo import PPO, PPO_parameter, PPOParameters, PPOState
from aquaml.algorithm.bc import BC, BCParameters
from aquaml.algorithm.td3bc import TD3BC, TD3BCParameters
from aquaml.algorithm.iql import IQL, IQLParameters
from aquaml.algorithm.gail import GAIL, GAILPPO, GAILParameters, GAILPPOParameters
from aquaml.algorithm.airl import AIRL, AIRLPPO, AIRLParameters, AIRLPPOParameters
from aquaml.algorithm.amp import AMP, AMPParameters
from aquaml.algorithm.dagger import DAgger, DAggerParameters
from aquaml.algorithm.vae import VAE, VAEParameters

#: CLI name -> built-in algorithm class (see aquaml.algorithm.registry for user algorithms)
ALGORITHMS = {"sac": SAC, "td3": TD3, "ppo": PPO, "bc": BC, "td3bc": TD3BC, "iql": IQL, "gail": GAIL,
              "gail_ppo": GAILPPO, "airl": AIRL, "airl_ppo": AIRLPPO, "amp": AMP, "dagger": DAgger, "vae": VAE}

__all__ = ["Parameters", "LoopParameters", "OffPolicyParameters", "OnPolicyParameters", "SequenceParameters",
           "Algorithm", "SAC", "SAC2", "SAC2_parameter", "SACParameters", "SACState", "soft_td_target",
           "TD3", "TD3Parameters", "TD3State", "td3_target", "PPO", "PPO_parameter", "PPOParameters",
           "PPOState", "gae", "BC", "BCParameters", "TD3BC", "TD3BCParameters", "IQL", "IQLParameters",
           "OfflineParameters", "GAIL", "GAILParameters", "GAILPPO", "GAILPPOParameters",
           "AIRL", "AIRLParameters", "AIRLPPO", "AIRLPPOParameters", "AMP", "AMPParameters",
           "DAgger", "DAggerParameters", "VAE", "VAEParameters",
           "ALGORITHMS"]
