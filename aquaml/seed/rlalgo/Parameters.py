"""Seed path: ``from AquaML.rlalgo.Parameters import SAC2_parameter``."""
from aquaml.algorithm.sac import SAC2_parameter, SACParameters

__all__ = ["SAC2_parameter", "SACParameters"]
