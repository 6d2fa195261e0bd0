"""Minari (Farama's offline-RL dataset standard) to and from :class:`~aquaml.data.Dataset`.

Minari stores actions in the environment's units; AquaML's continuous actions lie in
``[-1, 1]``. Export scales them to the recorded bounds (in float64, so a round trip gives
the same float32 actions back); import scales a Box action space back. A Dict observation
space becomes one named observation per key; a Box observation becomes ``'obs'``, as the
Gymnasium adapter names it.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from aquaml.data.dataset import Dataset, DatasetError
from aquaml.tools.imports import optional_import

_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")  # namespaces nest, as Minari's own mujoco/hopper/expert-v0


def _minari():
    return optional_import("minari", "Minari datasets")


def _check_id(dataset_id: str) -> None:
    if not _ID.match(dataset_id):
        raise ValueError(f"{dataset_id!r} is not a Minari dataset id: use [namespace/...]name-v<N>, "
                         "e.g. minari:pendulum/expert-v0")


def _action_bounds(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    shape = dataset.action.shape[1:]
    meta = dataset.metadata
    if "action_low" in meta and "action_high" in meta:
        return (np.asarray(meta["action_low"], np.float64).reshape(shape),
                np.asarray(meta["action_high"], np.float64).reshape(shape))
    return -np.ones(shape), np.ones(shape)


def to_minari(dataset: Dataset, dataset_id: str) -> str:
    """Write ``dataset`` as the Minari dataset ``dataset_id``; returns ``'minari:<id>'``."""
    _check_id(dataset_id)
    minari = _minari()
    from gymnasium import spaces
    from minari.data_collector import EpisodeBuffer

    obs_spaces = {k: spaces.Box(-np.inf, np.inf, v.shape[1:], np.float32) for k, v in dataset.observations.items()}
    single = list(obs_spaces) == ["obs"]
    observation_space = obs_spaces["obs"] if single else spaces.Dict(obs_spaces)
    if dataset.discrete:
        n = int(dataset.metadata.get("n_actions", int(dataset.action.max()) + 1))
        action_space = spaces.Discrete(n)
    else:
        low, high = _action_bounds(dataset)
        action_space = spaces.Box(low, high, dtype=np.float64)
    buffers = []
    for i in range(dataset.n_episodes):
        ep = dataset.episode(i)
        action = ep["action"]
        if not dataset.discrete:
            action = low + (action.astype(np.float64) + 1.0) * (high - low) / 2.0
        buffers.append(EpisodeBuffer(
            id=i, observations=ep["observations"]["obs"] if single else ep["observations"], actions=action,
            rewards=ep["reward"], terminations=ep["terminated"], truncations=ep["truncated"], infos={}))
    env = dataset.metadata.get("env")
    env = env if isinstance(env, str) and _registered(env) else None
    with warnings.catch_warnings():  # Minari asks for author, description, ... on every dataset
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env, algorithm_name=str(dataset.metadata.get("algo", "aquaml")),
            observation_space=observation_space, action_space=action_space,
            description=f"AquaML dataset ({dataset.n_episodes} episodes)")
    return f"minari:{dataset_id}"


def _registered(env_id: str) -> bool:
    import gymnasium as gym

    return env_id in gym.registry


def from_minari(source: str | Path) -> Dataset:
    """A Minari dataset by id (local, no download) or by directory."""
    minari = _minari()
    if isinstance(source, Path):
        data = source / "data" if (source / "data" / "main_data.hdf5").exists() else source
        ds = minari.MinariDataset(data)
        name = str(source)
    else:
        _check_id(source)
        try:
            ds = minari.load_dataset(source, download=False)
        except (FileNotFoundError, ValueError) as e:
            raise FileNotFoundError(f"no local Minari dataset {source!r} ({e}); datasets live under "
                                    "$MINARI_DATASETS_PATH (default ~/.minari/datasets)") from None
        name = source
    from gymnasium import spaces

    action_space = ds.spec.action_space
    episodes = []
    for ep in ds.iterate_episodes():
        obs = ep.observations
        obs = {k: np.asarray(v) for k, v in obs.items()} if isinstance(obs, dict) else {"obs": np.asarray(obs)}
        episodes.append({"observations": obs, "action": _to_agent_actions(np.asarray(ep.actions), action_space, name),
                         "reward": ep.rewards, "terminated": ep.terminations, "truncated": ep.truncations})
    meta = {"source": f"minari:{name}"}
    env_spec = getattr(ds.spec, "env_spec", None)
    if env_spec is not None:
        meta["env"] = env_spec.id
    if isinstance(action_space, spaces.Box):
        meta.update(action_low=action_space.low.tolist(), action_high=action_space.high.tolist())
    elif isinstance(action_space, spaces.Discrete):
        meta["n_actions"] = int(action_space.n)
    return Dataset.from_episodes(episodes, meta)


def _to_agent_actions(actions: np.ndarray, space, name) -> np.ndarray:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return actions.astype(np.int64) - int(space.start)
    if not isinstance(space, spaces.Box):
        raise DatasetError(f"Minari dataset {name}: action space {space} is neither Box nor Discrete")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise DatasetError(f"Minari dataset {name}: the action space {space} is unbounded; AquaML's actions are "
                           "scaled to [-1, 1] from finite bounds")
    return (2.0 * (actions.astype(np.float64) - low) / (high - low) - 1.0).astype(np.float32)
