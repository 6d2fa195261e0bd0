"""Sampling: collecting transitions from environments with the current policy."""
from aquaml.sampler.collector import Collector, episode_seed, evaluate

__all__ = ["Collector", "episode_seed", "evaluate"]
