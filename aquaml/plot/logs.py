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
import io
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from aquaml.tools.console import first_line

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
    columns: dict[str, np.ndarray] = field(default_factory=dict)  #: NaN where nothing was logged
    files: tuple = ()  #: the files read
    #: rows where a column logged a non-finite value (``nan``, ``inf``), which the columns also
    #: hold as NaN/inf; kept apart from cells left empty
    nonfinite: dict[str, np.ndarray] = field(default_factory=dict)
    text_columns: tuple = ()  #: columns left out because they hold text

    def values(self, name: str) -> np.ndarray:
        """Column ``name``; a ``ValueError`` naming the run and what it has if absent or if a
        value logged there is not finite (a plot would draw over a divergence)."""
        if name not in self.columns:
            text = f" ({name} holds text)" if name in self.text_columns else ""
            raise ValueError(f"{self.path}: no column {name!r}{text}; it has {', '.join(self.logged_columns())}")
        column, rows = self.columns[name], self.nonfinite.get(name, np.zeros(0, int))
        finite = np.flatnonzero(np.isfinite(column))
        # nan before a column's first value means "not yet" (AquaML's training return before the
        # first episode ends); nan after it, or inf anywhere, means the run diverged
        bad = [r for r in rows if np.isinf(column[r]) or (len(finite) and r > finite[0])]
        if bad:
            raise ValueError(f"{self.path}: {name} logged {column[bad[0]]} at row {bad[0] + 1} after finite values "
                             "(the run diverged); leave the run out or plot another column")
        return column

    def logged_columns(self) -> list[str]:
        """The columns holding at least one value (a CSV may carry other algorithms' columns empty)."""
        return sorted(k for k, v in self.columns.items() if np.isfinite(v).any())

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
        if run.files not in seen:
            seen.add(run.files)
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
    if best[0].name.endswith("monitor.csv"):  # one per env of a vector env: all of them
        return read_sb3_monitor(best)
    return _read_file(best[0])


def _read_file(f: Path) -> Run:
    if f.name == "evaluations.npz":
        return read_sb3_evaluations(f)
    if f.name.endswith("monitor.csv"):
        return read_sb3_monitor([f])
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


def complete_lines(text: str) -> list[str]:
    """The lines of a log that end in a newline: a last line still being written is left out."""
    return text.splitlines()[: text.count("\n")]


def _fill_empty(text: str) -> str:
    """Empty CSV cells as ``nan`` (twice over ``,,``: neighbouring empty cells share a comma)."""
    text = text.replace(",,", ",nan,").replace(",,", ",nan,").replace(",\n", ",nan\n").replace("\n,", "\nnan,")
    return ("nan" if text.startswith(",") else "") + text + ("nan" if text.endswith(",") else "")


@dataclass
class _Table:
    columns: dict[str, np.ndarray]
    nonfinite: dict[str, np.ndarray]
    text_columns: tuple


def _read_csv(lines: Sequence[str], path: Path) -> _Table:
    """Numeric columns of a CSV, empty cells NaN; logged ``nan``/``inf`` noted apart; text columns named."""
    if not lines:
        raise LogError(f"{path}: empty file")
    header = next(csv.reader(lines[:1]))
    body = [line for line in lines[1:] if line]
    if not body:
        return _Table({name: np.zeros(0) for name in header}, {}, ())
    joined = "\n".join(body)
    if not any(word in joined.lower() for word in ("nan", "inf")):  # the common case: numpy's C parser
        try:
            values = np.loadtxt(io.StringIO(_fill_empty(joined)), delimiter=",", ndmin=2, dtype=np.float64)
            if values.shape[1] == len(header):
                return _Table({name: values[:, i] for i, name in enumerate(header)}, {}, ())
        except ValueError:
            pass  # a text cell: the loop below finds its column
    rows = list(csv.reader(body))
    columns, nonfinite, text = {}, {}, []
    for i, name in enumerate(header):
        cells = [r[i] if i < len(r) else "" for r in rows]
        try:
            col = np.array([float(v) if v != "" else np.nan for v in cells], np.float64)
        except ValueError:
            text.append(name)
            continue
        columns[name] = col
        logged = np.array([v != "" for v in cells]) & ~np.isfinite(col)
        if logged.any():
            nonfinite[name] = np.flatnonzero(logged)
    return _Table(columns, nonfinite, tuple(text))


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
    table = _read_csv(complete_lines((folder / "progress.csv").read_text()), folder / "progress.csv")
    return Run(folder, "aquaml", flat, table.columns, (str(folder / "progress.csv"),), table.nonfinite,
               table.text_columns)


def read_sb3_evaluations(f: Path) -> Run:
    """SB3's ``EvalCallback`` file: evaluation returns of each episode at each ``timesteps``."""
    try:
        with np.load(f, allow_pickle=False) as data:
            steps, results = np.asarray(data["timesteps"], np.float64), np.asarray(data["results"], np.float64)
            lengths = np.asarray(data["ep_lengths"], np.float64) if "ep_lengths" in data.files else None
    except (OSError, ValueError, KeyError) as e:
        raise LogError(f"{f}: not an SB3 evaluations.npz ({first_line(e)})") from None
    results = results.reshape(len(steps), -1)
    columns = {"env_steps": steps, "eval_return_mean": results.mean(axis=1), "eval_return_std": results.std(axis=1)}
    if lengths is not None:
        columns["eval_episode_length"] = lengths.reshape(len(steps), -1).mean(axis=1)
    return Run(f.parent, "sb3-evaluations", _other_framework_config(f.parent, "sb3"), columns, (str(f),))


def read_sb3_monitor(files: Sequence[Path]) -> Run:
    """SB3's ``Monitor`` files of one run (one per env of a vector env): a ``#{json}`` line, then
    ``r,l,t`` per finished episode. Episodes of all files in the order they ended (``t``), env
    steps as the running sum of their lengths, as SB3's own ``load_results`` counts them."""
    parts = []
    for f in files:
        lines = complete_lines(f.read_text())
        if not lines or not lines[0].startswith("#"):
            raise LogError(f"{f}: not an SB3 monitor file (its first line should be '#{{...}}')")
        cols = _read_csv(lines[1:], f).columns
        if not {"r", "l", "t"} <= set(cols):
            raise LogError(f"{f}: not an SB3 monitor file (columns {sorted(cols)}, expected r, l, t)")
        parts.append(cols)
    merged = {k: np.concatenate([p[k] for p in parts]) for k in ("r", "l", "t")}
    order = np.argsort(merged["t"], kind="stable")
    r, length, t = (merged[k][order] for k in ("r", "l", "t"))
    columns = {"env_steps": np.cumsum(length), "wall_time_s": t, "train_return_mean": r, "episode_return": r,
               "episode_length": length}
    folder = files[0].parent
    return Run(folder, "sb3-monitor", _other_framework_config(folder, "sb3"), columns, tuple(map(str, files)))


def read_sb3_progress(f: Path) -> Run:
    """SB3's CSV logger: rows written at different moments hold different keys (empty cells)."""
    table = _read_csv(complete_lines(f.read_text()), f)
    columns, nonfinite = dict(table.columns), dict(table.nonfinite)
    for key, common in SB3_KEYS.items():
        if key in columns:
            columns[common] = columns[key]
            if key in nonfinite:
                nonfinite[common] = nonfinite[key]
    return Run(f.parent, "sb3-progress", _other_framework_config(f.parent, "sb3"), columns, (str(f),), nonfinite,
               table.text_columns)


def read_tensorboard(folder: Path, files: list[Path]) -> Run:
    """Every scalar of the event files: ``columns[tag]`` aligned on the union of steps (NaN where
    a tag has no value at a step), ``env_steps`` = the step, ``wall_time_s`` from the first event."""
    points: dict[str, dict[int, float]] = {}
    walls: dict[int, float] = {}
    diverged: dict[str, set[int]] = {}
    for f in files:
        for step, wall, tag, value in _scalars(f):
            points.setdefault(tag, {})[step] = value
            walls.setdefault(step, wall)
            if not np.isfinite(value):
                diverged.setdefault(tag, set()).add(step)
    if not points:
        raise LogError(f"{folder}: its event files hold no scalar")
    steps = np.array(sorted({s for tag in points.values() for s in tag}), np.int64)
    columns = {"env_steps": steps.astype(np.float64)}
    first = min(walls.values())
    columns["wall_time_s"] = np.array([walls[s] - first for s in steps])
    for tag, values in points.items():
        columns[tag] = np.array([values.get(int(s), np.nan) for s in steps])
    nonfinite = {tag: np.flatnonzero(np.isin(steps, sorted(bad))) for tag, bad in diverged.items()}
    return Run(folder, "tensorboard", _other_framework_config(folder, "tensorboard"), columns,
               tuple(map(str, files)), nonfinite)


def _scalars(f: Path):
    """``(step, wall_time, tag, value)`` of each scalar in a TFRecord event file. A record cut
    short at the end (a writer still running) ends the file; a damaged record is an error."""
    from google.protobuf.message import DecodeError
    from aquaml.tools.imports import import_without_torch

    Event = import_without_torch("tensorboardX.proto.event_pb2").Event

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
