"""Starters: build everything from user inputs, run the training loop in a run session, and read
trained runs back."""
from aquaml.starter.hooks import CheckpointHook, EvaluationHook, LogHook, ProgressHook, StopOnNonFinite
from aquaml.starter.loop import Counters, Hook, TrainingLoop
from aquaml.starter.rl_task_starter import RLTaskStarter, RunSummary
from aquaml.starter.generative import GenerativeTaskStarter
from aquaml.starter.run_folder import RunFolder
from aquaml.starter.session import RunSession
from aquaml.starter.loading import LoadedRun, load_policy, load_reward, load_run, replay_dataset

__all__ = ["RLTaskStarter", "GenerativeTaskStarter", "RunSummary", "TrainingLoop", "Hook", "Counters", "RunSession",
           "EvaluationHook", "LogHook", "ProgressHook", "CheckpointHook", "StopOnNonFinite", "RunFolder",
           "LoadedRun", "load_run", "load_policy", "load_reward", "replay_dataset"]
