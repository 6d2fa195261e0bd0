"""Seed path: ``from AquaML.BaseClass import RLBaseEnv``."""
from aquaml.env import RLBaseEnv

__all__ = ["RLBaseEnv"]
