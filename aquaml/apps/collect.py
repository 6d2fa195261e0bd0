"""Datasets from trained runs (``aquaml collect``): recorded episodes of a run's policy, or its
replay buffer (:func:`aquaml.starter.loading.replay_dataset`, D4RL's "medium-replay" recipe).

``collect`` plays seeded episodes of a run's newest checkpoint and records every named
observation (the actor's recurrent state outputs included), the actions, rewards, and
episode ends with the true final observation.
"""
from __future__ import annotations

import os

from aquaml.data import Dataset, save_data
from aquaml.sampler import COLLECT_FIRST_EPISODE
from aquaml.starter.loading import load_run


def collect(run_dir: str | os.PathLike, episodes: int, out: str | os.PathLike | None = None,
            deterministic: bool = True, first_episode: int = COLLECT_FIRST_EPISODE) -> Dataset:
    """Record ``episodes`` seeded episodes of the run's newest checkpoint (read-only).

    Args:
        out: also write the dataset there (``.npz``, ``.h5``/``.hdf5`` or ``minari:NAME``).
        deterministic: the policy's deterministic action (``False``: sampled actions, seeded).
        first_episode: number of the first episode in the run's evaluation stream.
    """
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    run = load_run(run_dir)
    run.close()
    meta = {"env": run.config.get("env"), "algo": run.config.get("algo"), "run_dir": str(run.folder.path.resolve()),
            "checkpoint": run.checkpoint.name}
    dataset = run.policy().record(episodes, deterministic, first_episode, metadata=meta)
    if out is not None:
        save_data(out, dataset)
    return dataset
