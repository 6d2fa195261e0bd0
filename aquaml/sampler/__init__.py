"""Sampling: collecting transitions from environments with the current policy."""
from aquaml.sampler.collector import Collector, episode_seed, run_episodes

__all__ = ["Collector", "episode_seed", "run_episodes"]
