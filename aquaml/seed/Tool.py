"""Seed path: ``from AquaML.Tool import allocate_gpu``."""
from aquaml.tools.gpu import allocate_gpu

__all__ = ["allocate_gpu"]
