"""Seed path: ``AquaML.rlalgo``."""
