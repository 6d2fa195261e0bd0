"""Starters: build everything from user inputs and run the training loop."""
from aquaml.starter.evaluation import Evaluator, load_policy
from aquaml.starter.hooks import CheckpointHook, EvaluationHook, LogHook, ProgressHook, StopOnNonFinite
from aquaml.starter.loop import Counters, Hook, TrainingLoop
from aquaml.starter.rl_task_starter import RLTaskStarter, RunSummary
from aquaml.starter.run_folder import RunFolder

__all__ = ["RLTaskStarter", "RunSummary", "TrainingLoop", "Hook", "Counters", "Evaluator", "load_policy",
           "EvaluationHook", "LogHook", "ProgressHook", "CheckpointHook", "StopOnNonFinite", "RunFolder"]
