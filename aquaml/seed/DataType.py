"""Seed path: ``from AquaML.DataType import DataInfo``."""
from aquaml.data import DataInfo

__all__ = ["DataInfo"]
