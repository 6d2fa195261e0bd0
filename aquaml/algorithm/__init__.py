"""Algorithms: each a parameter dataclass plus pure, jitted update functions."""
from aquaml.algorithm.parameters import Parameters
from aquaml.algorithm.sac import SAC, SAC2, SAC2_parameter, SACParameters, SACState, soft_td_target

#: CLI name -> algorithm class
ALGORITHMS = {"sac": SAC}

__all__ = ["Parameters", "SAC", "SAC2", "SAC2_parameter", "SACParameters", "SACState", "soft_td_target", "ALGORITHMS"]
