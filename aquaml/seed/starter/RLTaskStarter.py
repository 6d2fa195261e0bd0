"""Seed path: ``from AquaML.starter.RLTaskStarter import RLTaskStarter``."""
from aquaml.starter import RLTaskStarter

__all__ = ["RLTaskStarter"]
