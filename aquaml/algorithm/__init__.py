"""Algorithms: each a parameter dataclass plus pure, jitted update functions."""
from aquaml.algorithm.parameters import Parameters
from aquaml.algorithm.sac import SAC, SAC2, SAC2_parameter, SACParameters, SACState, soft_td_target
from aquaml.algorithm.td3 import TD3, TD3Parameters, TD3State, td3_target
from aquaml.algorithm.ppo import PPO, PPO_parameter, PPOParameters, PPOState, gae

#: CLI name -> algorithm class
ALGORITHMS = {"sac": SAC, "td3": TD3, "ppo": PPO}

__all__ = ["Parameters", "SAC", "SAC2", "SAC2_parameter", "SACParameters", "SACState", "soft_td_target",
           "TD3", "TD3Parameters", "TD3State", "td3_target", "PPO", "PPO_parameter", "PPOParameters",
           "PPOState", "gae", "ALGORITHMS"]
