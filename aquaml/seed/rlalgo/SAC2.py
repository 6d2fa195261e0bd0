"""Seed path: ``from AquaML.rlalgo.SAC2 import SAC2``."""
from aquaml.algorithm.sac import SAC2

__all__ = ["SAC2"]
