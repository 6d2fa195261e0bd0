"""Recorded episodes of named observations: what imitation and offline learners train on.

Layout (Minari's): an episode of ``T`` steps holds ``T + 1`` observations per name (the
last is the true final observation, also after a time-limit truncation) and ``T`` actions,
rewards, terminations and truncations. Episodes are concatenated; ``lengths`` holds each
``T``. Actions are the agent's: continuous ones in ``[-1, 1]`` (the env wrapper scales them
to the env's bounds, which ``metadata['action_low'/'action_high']`` records), discrete ones as
indices. A dataset may hold more observations than a model reads; each model takes the
names its ``input_name`` declares.

Every check runs when a dataset is built or loaded, so bad data fails before training with
a message naming the field and the episode.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

STEP_FIELDS = ("action", "reward", "terminated", "truncated")


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message names the field and the episode."""


@dataclass
class Dataset:
    """Episodes of named observations, actions, rewards and episode ends.

    Args:
        observations: ``name -> (sum(T_i + 1), ...)`` arrays.
        action: ``(sum(T_i), ...)``; reward, terminated, truncated: ``(sum(T_i),)``.
        lengths: ``(n_episodes,)`` steps per episode.
        metadata: JSON-able facts (env id, action bounds, where the data came from).
    """

    observations: dict[str, np.ndarray]
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    lengths: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.observations = {str(k): _numeric(v, f"observation {k!r}", np.float32)
                             for k, v in self.observations.items()}
        discrete = np.asarray(self.action).dtype.kind in "iub"
        self.action = _numeric(self.action, "action", np.int64 if discrete else np.float32)
        self.reward = _numeric(self.reward, "reward", np.float32)
        self.terminated = np.asarray(self.terminated).astype(bool)
        self.truncated = np.asarray(self.truncated).astype(bool)
        self.lengths = np.asarray(self.lengths, np.int64).reshape(-1)
        self.metadata = dict(self.metadata)
        self._check()

    # -- shape of the data -----------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def discrete(self) -> bool:
        return self.action.dtype.kind in "iu"

    @property
    def step_starts(self) -> np.ndarray:
        """Index of each episode's first step in the step arrays."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def episode_of_step(self) -> np.ndarray:
        """Episode index of every step."""
        return np.repeat(np.arange(self.n_episodes), self.lengths)

    def episode_at(self, step: int) -> tuple[int, int]:
        """``(episode, step within it)`` of a row of the step arrays."""
        e = int(np.searchsorted(np.cumsum(self.lengths), step, side="right"))
        return e, int(step - self.step_starts[e])

    def returns(self) -> np.ndarray:
        """Undiscounted return of each episode (float64 sums)."""
        return np.add.reduceat(self.reward.astype(np.float64), self.step_starts) if self.n_steps else np.zeros(0)

    # -- checks ---------------------------------------------------------------------
    def _check(self) -> None:
        if self.n_episodes == 0 or self.n_steps == 0:
            raise DatasetError("the dataset is empty: it holds no episode with at least one step")
        if not self.observations:
            raise DatasetError("the dataset holds no observations")
        if (self.lengths <= 0).any():
            e = int(np.argmax(self.lengths <= 0))
            raise DatasetError(f"episode {e} has {self.lengths[e]} steps; every episode needs at least one")
        n = self.n_steps
        for name in STEP_FIELDS:
            rows = len(getattr(self, name))
            if rows != n:
                raise DatasetError(f"field {name!r} has {rows} steps, but the episode lengths add up to {n}")
        rows_needed = n + self.n_episodes
        for name, obs in self.observations.items():
            if len(obs) != rows_needed:
                raise DatasetError(f"observation {name!r} has {len(obs)} rows; {self.n_episodes} episodes of "
                                   f"{n} steps need {rows_needed} (each episode's steps plus its final observation)")
        if self.reward.ndim != 1:
            raise DatasetError(f"field 'reward' must hold one number per step, got shape {self.reward.shape}")
        for name, values in [*((f"observation {k!r}", v) for k, v in self.observations.items()),
                             ("'action'", self.action), ("'reward'", self.reward)]:
            finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1) if values.dtype.kind == "f" else None
            if finite is not None and not finite.all():
                row = int(np.argmin(finite))
                where = self._obs_row(row) if name.startswith("observation") else self.episode_at(row)
                raise DatasetError(f"{name} holds NaN or inf in episode {where[0]} at step {where[1]}")
        ends = self.terminated | self.truncated
        last = np.cumsum(self.lengths) - 1
        inner = ends.copy()
        inner[last] = False
        if inner.any():
            e, t = self.episode_at(int(np.argmax(inner)))
            raise DatasetError(f"episode {e} ends at step {t} (terminated or truncated) but has {self.lengths[e]} "
                               "steps: split episodes at their ends (lengths) before building the dataset")

    def _obs_row(self, row: int) -> tuple[int, int]:
        starts = self.step_starts + np.arange(self.n_episodes)
        e = int(np.searchsorted(starts, row, side="right") - 1)
        return e, int(row - starts[e])

    def check_for(self, needs: Mapping[str, tuple[int, ...]], action_shape: tuple[int, ...] | None,
                  n_actions: int | None = None, readers: Mapping[str, str] | None = None) -> None:
        """Raise a :class:`DatasetError` unless this dataset feeds models that read ``needs``.

        Args:
            needs: observation name -> shape per step.
            action_shape: the actor's action shape (continuous actions must lie in [-1, 1]).
            n_actions: discrete actions: their number (indices must lie in [0, n)).
            readers: observation name -> the model role that reads it (for the message).
        """
        readers = dict(readers or {})
        for name, shape in needs.items():
            if name not in self.observations:
                who = f" that the {readers[name]} model reads" if name in readers else ""
                raise DatasetError(f"the dataset lacks observation {name!r}{who}; it holds "
                                   f"{', '.join(sorted(self.observations))}")
            if self.observations[name].shape[1:] != tuple(shape):
                raise DatasetError(f"observation {name!r} has shape {self.observations[name].shape[1:]} per step in "
                                   f"the dataset; the models read {tuple(shape)}")
        if n_actions is not None:
            if not self.discrete:
                raise DatasetError(f"the environment has {n_actions} discrete actions; the dataset's actions are "
                                   f"{self.action.dtype} (continuous)")
            bad = (self.action < 0) | (self.action >= n_actions)
            bad = bad.reshape(len(bad), -1).any(axis=1)
            if bad.any():
                e, t = self.episode_at(int(np.argmax(bad)))
                raise DatasetError(f"'action' in episode {e} at step {t} is {self.action[int(np.argmax(bad))]}, "
                                   f"outside the {n_actions} discrete actions [0, {n_actions})")
            return
        if action_shape is None:
            return
        if self.discrete:
            raise DatasetError("the dataset's actions are discrete indices; the environment's are continuous")
        if self.action.shape[1:] != tuple(action_shape):
            raise DatasetError(f"'action' has shape {self.action.shape[1:]} per step in the dataset; the actor "
                               f"outputs {tuple(action_shape)}")
        outside = (np.abs(self.action) > 1.0 + 1e-6).reshape(self.n_steps, -1).any(axis=1)
        if outside.any():
            row = int(np.argmax(outside))
            e, t = self.episode_at(row)
            raise DatasetError(f"'action' in episode {e} at step {t} is {self.action[row]}, outside the action space "
                               "[-1, 1] (AquaML datasets hold actions scaled to [-1, 1]; Minari datasets are "
                               "rescaled from their action space when loaded)")

    # -- views ----------------------------------------------------------------------
    def transitions(self, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Flat transition arrays, one row per step, as a replay buffer holds them:
        ``obs/<name>``, ``next_obs/<name>``, ``action``, ``reward``, ``terminated``, ``truncated``."""
        names = list(self.observations) if names is None else list(names)
        row = np.arange(self.n_steps) + self.episode_of_step  # the step's observation row
        out = {}
        for k in names:
            out[f"obs/{k}"] = self.observations[k][row]
            out[f"next_obs/{k}"] = self.observations[k][row + 1]
        out.update(action=self.action, reward=self.reward, terminated=self.terminated, truncated=self.truncated)
        return out

    def _index(self, i) -> int:
        """Episode index ``i`` as Python sequences read it: ``-1`` is the last episode."""
        n = self.n_episodes
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"episode index must be a whole number, got {i!r}")
        if not -n <= i < n:
            raise IndexError(f"episode index {int(i)} out of range: the dataset holds {n} episodes "
                             f"(valid indices {-n} to {n - 1})")
        return int(i) % n

    def episode(self, i: int) -> dict[str, Any]:
        """Episode ``i`` as a dict: ``observations`` (``T + 1`` rows per name) and the step fields.
        Negative ``i`` counts from the end, as for Python sequences."""
        i = self._index(i)
        start, T = int(self.step_starts[i]), int(self.lengths[i])
        o = start + i
        return {"observations": {k: v[o:o + T + 1] for k, v in self.observations.items()},
                **{k: getattr(self, k)[start:start + T] for k in STEP_FIELDS}}

    def select(self, episodes: Sequence[int] | slice) -> "Dataset":
        """A dataset of the chosen episodes in the order given (e.g. ``ds.select(range(20))``);
        negative indices count from the end, as for Python sequences."""
        if isinstance(episodes, slice):
            indices = np.arange(self.n_episodes)[episodes]
        else:
            indices = np.asarray(episodes).reshape(-1)
            if indices.dtype.kind == "b" or (len(indices) and indices.dtype.kind not in "iu"):
                raise TypeError(f"select takes episode indices (whole numbers) or a slice, got {episodes!r}")
        return Dataset.from_episodes([self.episode(i) for i in indices.tolist()], self.metadata)

    def digest(self) -> str:
        """SHA-256 of every array: recorded with a run so a resume can tell the data changed."""
        h = hashlib.sha256()
        for name, value in sorted(self.arrays().items()):
            h.update(name.encode())
            h.update(str(value.dtype).encode() + str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        return h.hexdigest()

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat arrays as files store them (``observations/<name>``, step fields, ``episode_lengths``)."""
        out = {f"observations/{k}": v for k, v in self.observations.items()}
        out.update({k: getattr(self, k) for k in STEP_FIELDS})
        out["episode_lengths"] = self.lengths
        return out

    # -- building ---------------------------------------------------------------------
    @classmethod
    def from_episodes(cls, episodes: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None) -> "Dataset":
        """Build from episode dicts (see :meth:`episode`); each is checked and named in errors."""
        if not episodes:
            raise DatasetError("the dataset is empty: no episodes were given")
        names = list(episodes[0]["observations"])
        for e, ep in enumerate(episodes):
            T = len(ep["action"])
            if T == 0:
                raise DatasetError(f"episode {e} has no steps")
            if set(ep["observations"]) != set(names):
                raise DatasetError(f"episode {e} has observations {sorted(ep['observations'])}; episode 0 has "
                                   f"{sorted(names)}")
            for k in STEP_FIELDS[1:]:
                if len(ep[k]) != T:
                    raise DatasetError(f"episode {e}: field {k!r} has {len(ep[k])} steps, 'action' has {T}")
            for k, v in ep["observations"].items():
                if len(v) != T + 1:
                    raise DatasetError(f"episode {e}: observation {k!r} has {len(v)} rows; {T} steps need {T + 1} "
                                       "(the last is the final observation)")
        return cls(observations={k: np.concatenate([np.asarray(ep["observations"][k]) for ep in episodes])
                                 for k in names},
                   **{k: np.concatenate([np.asarray(ep[k]) for ep in episodes]) for k in STEP_FIELDS},
                   lengths=np.array([len(ep["action"]) for ep in episodes]), metadata=dict(metadata or {}))

    @classmethod
    def from_transitions(cls, flat: Mapping[str, np.ndarray], n_envs: int = 1,
                         metadata: Mapping[str, Any] | None = None) -> "Dataset":
        """Rebuild episodes from transitions in the order they were collected (a replay buffer).

        Rows ``t * n_envs + i`` belong to environment ``i``. Each environment's rows are split
        after every termination or truncation; its last, unfinished episode is kept (its final
        ``next_obs`` is the last observation seen). Within an episode each ``next_obs`` must
        equal the following ``obs``. Episodes come in the order they started (the step ``t`` of
        their first row, then the environment index), so the first episodes are the oldest
        whatever ``n_envs``.
        """
        names = [k[len("obs/"):] for k in flat if k.startswith("obs/")]
        missing = [f"next_obs/{k}" for k in names if f"next_obs/{k}" not in flat]
        missing += [k for k in STEP_FIELDS if k not in flat]
        if not names or missing:
            raise DatasetError(f"transitions lack {', '.join(missing) or 'obs/<name> fields'}; they need obs/<name>, "
                               "next_obs/<name>, action, reward, terminated, truncated")
        n = len(flat["action"])
        if n % n_envs:
            raise DatasetError(f"{n} transitions do not split over n_envs = {n_envs} environments")
        episodes = []  # (first step t, env i, episode)
        for i in range(n_envs):
            rows = np.arange(i, n, n_envs)
            ends = np.flatnonzero(np.asarray(flat["terminated"])[rows] | np.asarray(flat["truncated"])[rows]) + 1
            for seg in np.split(rows, ends):
                if len(seg) == 0:
                    continue
                obs = {k: np.concatenate([flat[f"obs/{k}"][seg], flat[f"next_obs/{k}"][seg[-1:]]]) for k in names}
                for k in names:
                    if len(seg) > 1 and not np.array_equal(flat[f"next_obs/{k}"][seg[:-1]], flat[f"obs/{k}"][seg[1:]]):
                        t = int(np.argmin([np.array_equal(a, b) for a, b in
                                           zip(flat[f"next_obs/{k}"][seg[:-1]], flat[f"obs/{k}"][seg[1:]])]))
                        raise DatasetError(f"transitions of env {i}: next_obs/{k} at row {int(seg[t])} differs from "
                                           f"obs/{k} of the following row, though no episode ended there")
                episodes.append((int(seg[0]) // n_envs, i,
                                 {"observations": obs, **{k: np.asarray(flat[k])[seg] for k in STEP_FIELDS}}))
        episodes.sort(key=lambda started: started[:2])
        return cls.from_episodes([ep for _, _, ep in episodes], metadata)


def _numeric(value, what: str, dtype) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise DatasetError(f"{what} has non-numeric dtype {array.dtype}")
    return array.astype(dtype, copy=False)
