"""Hyperparameter tuning on Optuna: ``aquaml tune`` (see docs/tuning.md)."""
from aquaml.tune.space import DEFAULT_SPACES, Dimension, SpaceError, default_space, load_space, parse_space
from aquaml.tune.study import TuneConfig, Tuner, tune

__all__ = ["TuneConfig", "Tuner", "tune", "Dimension", "SpaceError", "DEFAULT_SPACES", "default_space", "load_space",
           "parse_space"]
