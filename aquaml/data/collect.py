"""Datasets from trained agents: recorded episodes (``aquaml collect``) and replay buffers.

``collect`` plays seeded episodes of a run's latest checkpoint and records every named
observation (the actor's recurrent state outputs included), the actions, rewards, and
episode ends with the true final observation. ``replay_dataset`` turns a run's
checkpointed replay buffer back into episodes (D4RL's "medium-replay" recipe).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from aquaml.data.dataset import Dataset, DatasetError

#: collected episodes are numbered from here in the evaluation stream, apart from the
#: episodes that training evaluations (0, 1, ...) and ``aquaml eval`` (10**6, ...) play
COLLECT_FIRST_EPISODE = 2 * 10**6


def action_metadata(env) -> dict[str, Any]:
    """The env's action bounds (Box) or number of actions (Discrete), for a dataset's metadata."""
    space = getattr(getattr(env, "env", None), "action_space", None)
    low, high, n = getattr(space, "low", None), getattr(space, "high", None), getattr(space, "n", None)
    if low is not None and high is not None:
        return {"action_low": np.asarray(low, np.float64).tolist(), "action_high": np.asarray(high, np.float64).tolist()}
    if n is not None:
        return {"n_actions": int(n)}
    return {}


def collect(run_dir: str | os.PathLike, episodes: int, out: str | os.PathLike | None = None,
            deterministic: bool = True, first_episode: int = COLLECT_FIRST_EPISODE) -> Dataset:
    """Record ``episodes`` seeded episodes of the run's newest checkpoint (read-only).

    Args:
        out: also write the dataset there (``.npz``, ``.h5``/``.hdf5`` or ``minari:NAME``).
        deterministic: the policy's deterministic action (``False``: sampled actions, seeded).
        first_episode: number of the first episode in the run's evaluation stream.
    """
    from aquaml.data.io import save_data
    from aquaml.starter.evaluation import load_policy
    from aquaml.starter.run_folder import RunFolder

    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    config = RunFolder.open(run_dir).config
    evaluator, actor_params, checkpoint = load_policy(run_dir)
    try:
        returns, _, records = evaluator.run(actor_params, episodes, first_episode, deterministic, record=True)
        meta = {"env": config.get("env"), "algo": config.get("algo"), "run_dir": str(Path(run_dir).resolve()),
                "checkpoint": checkpoint.name, "deterministic": deterministic, "first_episode": first_episode,
                **action_metadata(evaluator.driver.env)}
    finally:
        evaluator.close()
    dataset = Dataset.from_episodes(records, meta)
    if out is not None:
        save_data(out, dataset)
    return dataset


def replay_dataset(run_dir: str | os.PathLike) -> Dataset:
    """The replay buffer of a run's newest checkpoint as episodes, oldest first."""
    from aquaml.starter.run_folder import RunFolder
    from aquaml.tools.checkpoint import load_npz

    folder = RunFolder.open(run_dir)
    path = folder.latest_checkpoint()
    if not (path / "buffer.npz").exists():
        raise DatasetError(f"{path} holds no replay buffer (an on-policy run, or save_buffer=False)")
    saved = load_npz(path / "buffer.npz")
    size, ptr, capacity = int(saved["size"]), int(saved["ptr"]), int(saved["capacity"])
    order = np.arange(size)
    if size == capacity:  # the ring wrapped: its oldest transition sits at ptr
        order = np.roll(order, -ptr)
    flat = {k[len("data/"):]: v[order] for k, v in saved.items() if k.startswith("data/")}
    config = folder.config
    from aquaml.env import make_env

    env = make_env(config["env"]) if isinstance(config.get("env"), str) else None
    meta = {"env": config.get("env"), "algo": config.get("algo"), "run_dir": str(Path(run_dir).resolve()),
            "checkpoint": path.name, "source": "replay buffer", **(action_metadata(env) if env is not None else {})}
    if env is not None:
        env.close()
    return Dataset.from_transitions(flat, n_envs=int(config["parameters"].get("n_envs", 1)), metadata=meta)
