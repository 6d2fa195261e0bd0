"""Starters: build everything from user inputs and run the training loop."""
from aquaml.starter.rl_task_starter import RLTaskStarter, RunSummary

__all__ = ["RLTaskStarter", "RunSummary"]
