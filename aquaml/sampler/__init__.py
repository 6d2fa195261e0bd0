"""Sampling: collecting transitions from environments with the current policy, and running a
policy in seeded episodes (evaluations, recorded datasets)."""
from aquaml.sampler.collector import Collector, episode_seed, run_episodes
from aquaml.sampler.evaluation import COLLECT_FIRST_EPISODE, EVAL_FIRST_EPISODE, Evaluator, Policy

__all__ = ["Collector", "episode_seed", "run_episodes", "Evaluator", "Policy", "COLLECT_FIRST_EPISODE",
           "EVAL_FIRST_EPISODE"]
