"""Seed path: ``AquaML.starter``."""
