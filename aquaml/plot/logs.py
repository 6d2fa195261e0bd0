"""Training logs as numeric columns: AquaML run folders, Stable-Baselines3 / RL Zoo logs and
TensorBoard event files of any framework, so all of them can be drawn in one figure.

Every source becomes a :class:`Run`: a ``config`` (what it is: ``algo``, ``env``, ``seed``,
parameters) and ``columns`` (name -> 1-D array, one row per logged point). Common names let the
sources meet: ``env_steps`` (x), ``wall_time_s`` (x), ``eval_return_mean`` (evaluation return),
``train_return_mean`` (training episodes' return). Each source keeps its own columns as well
(``rollout/ep_rew_mean``, a TensorBoard tag, ...).

What each source maps. Other frameworks' ``algo`` and ``env`` come from their folder names: RL
Zoo's ``logs/ALGO/ENV_N/`` and CleanRL's ``runs/ENV__EXP__SEED__TIME/``, else the parent folder
names the algorithm; their ``algo`` is labelled with the framework (``sac (sb3)``), so that
AquaML's ``sac`` and SB3's are two groups of one figure.

| file | x | metric |
|---|---|---|
| AquaML ``config.json`` + ``progress.csv`` | its columns | its columns |
| SB3 ``evaluations.npz`` (EvalCallback) | ``timesteps`` | mean of ``results`` over episodes |
| SB3 ``*monitor.csv`` (Monitor) | cumulative episode lengths, ``t`` | ``r`` (one row per episode) |
| SB3 ``progress.csv`` (logger) | ``time/total_timesteps``, ``time/time_elapsed`` | ``eval/mean_reward``, ``rollout/ep_rew_mean`` |
| ``events.out.tfevents.*`` | the event's step, its wall time | every scalar tag |
"""
from __future__ import annotations

import csv
import glob
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

#: SB3 logger keys -> the common names
SB3_KEYS = {"time/total_timesteps": "env_steps", "time/time_elapsed": "wall_time_s",
            "eval/mean_reward": "eval_return_mean", "rollout/ep_rew_mean": "train_return_mean"}
_ZOO_ENV = re.compile(r"^(?P<env>.+-v\d+)_(?P<n>\d+)$")  # RL Zoo's ENV_N run folders
_CLEANRL = re.compile(r"^(?P<env>[^_].*?)__(?P<algo>.+)__(?P<seed>\d+)__(?P<time>\d+)$")  # CleanRL's run names


class LogError(ValueError):
    """A path that holds no readable log; the message names it and what was looked for."""


@dataclass
class Run:
    """One run's logged points."""

    path: Path
    source: str  #: ``aquaml``, ``sb3-evaluations``, ``sb3-monitor``, ``sb3-progress``, ``tensorboard``
    config: dict = field(default_factory=dict)  #: flat: algo, env, name, seed, parameters by name
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def key(self, name: str) -> str:
        """The value of ``name`` in :attr:`config` as text (for grouping); a ``ValueError`` naming
        the keys there are if absent."""
        if name not in self.config:
            raise ValueError(f"{self.path}: no key {name!r} to group by; it has {', '.join(sorted(self.config))}")
        value = self.config[name]
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run under ``paths`` (files, folders or glob patterns); a folder is searched
    recursively, so ``runs/`` gives all its run folders. Raises :class:`LogError` for a path that
    matches nothing or holds no log."""
    runs: list[Run] = []
    for pattern in map(str, paths):
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches or not Path(matches[0]).exists():
            raise LogError(f"{pattern}: no such file or folder")
        for match in matches:
            found = _runs_under(Path(match))
            if not found:
                raise LogError(f"{match}: not a run (looked for an AquaML run folder with config.json and "
                               "progress.csv, SB3's evaluations.npz / monitor.csv / progress.csv, or "
                               "TensorBoard events.out.tfevents.* files)")
            runs += found
    seen, unique = set(), []
    for run in runs:  # a folder and a glob inside it may name the same run twice
        if (run.path, run.source) not in seen:
            seen.add((run.path, run.source))
            unique.append(run)
    return unique


def _runs_under(path: Path) -> list[Run]:
    if path.is_file():
        return [_read_file(path)]
    if (path / "config.json").exists() and (path / "progress.csv").exists():
        return [read_aquaml(path)]  # its tb/ folder repeats progress.csv: not read twice
    own = [f for f in sorted(path.iterdir()) if f.is_file() and _is_log_file(f)]
    if own:
        return [_read_folder(path, own)]
    return [run for sub in sorted(p for p in path.iterdir() if p.is_dir()) for run in _runs_under(sub)]


def _is_log_file(f: Path) -> bool:
    return (f.name == "evaluations.npz" or f.name.endswith("monitor.csv") or f.name == "progress.csv"
            or f.name.startswith("events.out.tfevents."))


def _read_folder(path: Path, files: list[Path]) -> Run:
    """Several logs of one run in one folder: evaluations first (what papers plot), then the
    logger's progress.csv, then TensorBoard, then the monitor."""
    order = ("evaluations.npz", "progress.csv", "events.out.tfevents.", "monitor.csv")
    rank = lambda f: next(i for i, o in enumerate(order) if f.name.startswith(o) or f.name.endswith(o))  # noqa: E731
    best = [f for f in files if rank(f) == min(map(rank, files))]
    if best[0].name.startswith("events.out.tfevents."):
        return read_tensorboard(path, best)
    return _read_file(best[0])


def _read_file(f: Path) -> Run:
    if f.name == "evaluations.npz":
        return read_sb3_evaluations(f)
    if f.name.endswith("monitor.csv"):
        return read_sb3_monitor(f)
    if f.name == "progress.csv":
        if (f.parent / "config.json").exists():
            return read_aquaml(f.parent)
        return read_sb3_progress(f)
    if f.name.startswith("events.out.tfevents."):
        return read_tensorboard(f.parent, [f])
    raise LogError(f"{f}: not a log file this reader knows (evaluations.npz, monitor.csv, progress.csv, "
                   "events.out.tfevents.*)")


def _other_framework_config(folder: Path, framework: str) -> dict:
    """``algo``/``env``/``seed`` from RL Zoo's ``logs/ALGO/ENV_N`` or CleanRL's
    ``runs/ENV__EXP__SEED__TIME`` folder names, else the parent folder names the algorithm."""
    config = {"name": folder.name, "algo": folder.parent.name, "env": "", "framework": framework}
    if m := _CLEANRL.match(folder.name):
        config.update(algo=m["algo"], env=m["env"], seed=int(m["seed"]))
    elif m := _ZOO_ENV.match(folder.name):
        config.update(env=m["env"], seed_index=int(m["n"]))
    config["algo"] = f"{config['algo']} ({framework})"
    return config


def _columns_of_csv(lines: Sequence[str], path: Path) -> dict[str, np.ndarray]:
    rows = list(csv.reader(lines))
    if not rows:
        raise LogError(f"{path}: empty file")
    header, body = rows[0], [r for r in rows[1:] if r]
    out = {}
    for i, name in enumerate(header):
        values = [r[i] if i < len(r) else "" for r in body]
        try:
            out[name] = np.array([float(v) if v != "" else np.nan for v in values], np.float64)
        except ValueError:
            continue  # a text column (SB3's time/fps is numeric; e.g. a name column is not)
    return out


def read_aquaml(folder: Path) -> Run:
    """An AquaML run folder: ``config.json`` flattened (parameters by their own names) and
    ``progress.csv``'s columns."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LogError(f"{folder / 'config.json'}: unreadable ({e})") from None
    flat = {k: v for k, v in config.items() if not isinstance(v, dict)}
    flat.update(config.get("parameters", {}))
    flat.setdefault("seed", config.get("parameters", {}).get("seed"))
    flat["framework"] = "aquaml"
    text = (folder / "progress.csv").read_text()
    lines = text.splitlines()[: text.count("\n")]  # a last line still being written is left out
    return Run(folder, "aquaml", flat, _columns_of_csv(lines, folder / "progress.csv"))


def read_sb3_evaluations(f: Path) -> Run:
    """SB3's ``EvalCallback`` file: evaluation returns of each episode at each ``timesteps``."""
    try:
        with np.load(f, allow_pickle=False) as data:
            steps, results = np.asarray(data["timesteps"], np.float64), np.asarray(data["results"], np.float64)
            lengths = np.asarray(data["ep_lengths"], np.float64) if "ep_lengths" in data.files else None
    except (OSError, ValueError, KeyError) as e:
        raise LogError(f"{f}: not an SB3 evaluations.npz ({str(e).splitlines()[0]})") from None
    results = results.reshape(len(steps), -1)
    columns = {"env_steps": steps, "eval_return_mean": results.mean(axis=1), "eval_return_std": results.std(axis=1)}
    if lengths is not None:
        columns["eval_episode_length"] = lengths.reshape(len(steps), -1).mean(axis=1)
    return Run(f.parent, "sb3-evaluations", _other_framework_config(f.parent, "sb3"), columns)


def read_sb3_monitor(f: Path) -> Run:
    """SB3's ``Monitor`` file: a ``#{json}`` line, then ``r,l,t`` per finished episode."""
    lines = f.read_text().splitlines()
    if not lines or not lines[0].startswith("#"):
        raise LogError(f"{f}: not an SB3 monitor file (its first line should be '#{{...}}')")
    cols = _columns_of_csv(lines[1:], f)
    if not {"r", "l", "t"} <= set(cols):
        raise LogError(f"{f}: not an SB3 monitor file (columns {sorted(cols)}, expected r, l, t)")
    columns = {"env_steps": np.cumsum(cols["l"]), "wall_time_s": cols["t"], "train_return_mean": cols["r"],
               "episode_return": cols["r"], "episode_length": cols["l"]}
    return Run(f.parent, "sb3-monitor", _other_framework_config(f.parent, "sb3"), columns)


def read_sb3_progress(f: Path) -> Run:
    """SB3's CSV logger: rows written at different moments hold different keys (empty cells)."""
    cols = _columns_of_csv(f.read_text().splitlines(), f)
    columns = dict(cols)
    for key, common in SB3_KEYS.items():
        if key in cols:
            columns[common] = cols[key]
    return Run(f.parent, "sb3-progress", _other_framework_config(f.parent, "sb3"), columns)


def read_tensorboard(folder: Path, files: list[Path]) -> Run:
    """Every scalar of the event files: ``columns[tag]`` aligned on the union of steps (NaN where
    a tag has no value at a step), ``env_steps`` = the step, ``wall_time_s`` from the first event."""
    points: dict[str, dict[int, float]] = {}
    walls: dict[int, float] = {}
    for f in files:
        for step, wall, tag, value in _scalars(f):
            points.setdefault(tag, {})[step] = value
            walls.setdefault(step, wall)
    if not points:
        raise LogError(f"{folder}: its event files hold no scalar")
    steps = np.array(sorted({s for tag in points.values() for s in tag}), np.int64)
    columns = {"env_steps": steps.astype(np.float64)}
    first = min(walls.values())
    columns["wall_time_s"] = np.array([walls[s] - first for s in steps])
    for tag, values in points.items():
        columns[tag] = np.array([values.get(int(s), np.nan) for s in steps])
    return Run(folder, "tensorboard", _other_framework_config(folder, "tensorboard"), columns)


def _scalars(f: Path):
    """``(step, wall_time, tag, value)`` of each scalar in a TFRecord event file. A record cut
    short at the end (a writer still running) ends the file; a damaged record is an error."""
    from google.protobuf.message import DecodeError
    from tensorboardX.proto.event_pb2 import Event

    data = f.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        end = pos + 12 + length + 4  # length, its CRC, the record, its CRC
        if end > len(data):
            break
        try:
            event = Event.FromString(data[pos + 12: pos + 12 + length])
        except DecodeError:
            raise LogError(f"{f}: damaged event record at byte {pos}") from None
        pos = end
        for v in event.summary.value:
            if v.HasField("simple_value"):
                value = v.simple_value
            elif v.HasField("tensor") and (v.tensor.float_val or v.tensor.double_val or v.tensor.tensor_content):
                t = v.tensor
                if t.float_val or t.double_val:
                    value = (list(t.float_val) or list(t.double_val))[0]
                else:  # TF2's tf.summary.scalar: the value as raw bytes of its dtype
                    dtype = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}.get(t.dtype)
                    if dtype is None:
                        continue
                    value = np.frombuffer(t.tensor_content, dtype)[0]
            else:
                continue  # images, histograms, text
            yield int(event.step), float(event.wall_time), v.tag, float(value)
