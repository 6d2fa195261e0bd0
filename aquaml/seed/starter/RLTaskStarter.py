"""Seed path: ``from AquaML.starter.RLTaskStarter import RLTaskStarter`` (the seed's attribute names:
see :mod:`aquaml.seed`)."""
from aquaml.seed import RLTaskStarter

__all__ = ["RLTaskStarter"]
