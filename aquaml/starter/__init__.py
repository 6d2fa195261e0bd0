"""Starters: build everything from user inputs, run the training loop in a run session, and read
trained runs back.

The names below load their modules on first use: finding a run folder
(:mod:`aquaml.starter.run_dirs`) needs no JAX, so the command line checks a path before JAX loads.
"""
from importlib import import_module

_EXPORTS = {
    "RLTaskStarter": "rl_task_starter", "RunSummary": "rl_task_starter", "GenerativeTaskStarter": "generative",
    "TrainingLoop": "loop", "Hook": "loop", "Counters": "loop", "RunSession": "session",
    "EvaluationHook": "hooks", "LogHook": "hooks", "ProgressHook": "hooks", "CheckpointHook": "hooks",
    "StopOnNonFinite": "hooks", "RunFolder": "run_folder", "find_run": "run_dirs",
    "LoadedRun": "loading", "load_run": "loading", "load_policy": "loading", "load_reward": "loading",
    "replay_dataset": "loading",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"aquaml.starter.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'aquaml.starter' has no attribute {name!r}")
