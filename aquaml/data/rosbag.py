"""ROS bags read into arrays, without a ROS installation (the pure-Python ``rosbags`` package).

A bag is a ROS 1 ``.bag`` file, a ROS 2 bag directory (``metadata.yaml`` beside its storage
files) or one ROS 2 storage file (``.db3`` sqlite3 or ``.mcap``). Messages are decoded with the
definitions stored in the bag, so custom message types work; a ROS 2 bag without stored
definitions falls back to the standard types of the latest ROS 2 LTS.

Fields are named by dotted paths with ``[i]`` indices, e.g. ``pose.pose.position.x``,
``twist.linear.x``, ``data``, ``position[0]``. A numeric scalar field gives one number per
message; a fixed-size numeric array (``pose.covariance``) gives a ``(messages, size)`` array,
one column per element; ``field[i]`` picks one element, also of a variable-length sequence.

Time, in float64 seconds (``ns / 1e9``): ``time="header"`` uses each message's
``header.stamp``; ``"receive"`` the time the recorder stored the message; ``"auto"`` (the
default) uses ``header.stamp`` where the message has a header whose stamps are all set
(non-zero), else the receive time. Messages come in the bag's (receive) order.

:func:`from_rosbag` turns bags into a :class:`~aquaml.data.Dataset`, one episode per bag;
``docs/plots.md`` ("ROS bags") describes its mapping.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from aquaml.data.dataset import Dataset, DatasetError
from aquaml.tools.imports import optional_import

TIME_SOURCES = ("auto", "header", "receive")
_NUMERIC = {"bool": np.bool_, "byte": np.int64, "char": np.int64, "int8": np.int8, "uint8": np.uint8,
            "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
            "uint64": np.uint64, "float32": np.float32, "float64": np.float64}
_STORAGE_SUFFIXES = (".db3", ".mcap")
_SEGMENT = re.compile(r"^([A-Za-z_]\w*)((?:\[\d+\])*)$")
_BASE, _NAME, _ARRAY, _SEQUENCE = 1, 2, 3, 4  # rosbags' Nodetype values
_MIXED = "(mixed types)"


class BagError(ValueError):
    """A bag, topic or field that cannot be read; the message names it and what exists instead."""


class BagNotFoundError(BagError, FileNotFoundError):
    """No bag at the given path."""


def _rosbags():
    highlevel = optional_import("rosbags.highlevel", "reading ROS bags", "plot")
    typesys = optional_import("rosbags.typesys", "reading ROS bags", "plot")
    return highlevel.AnyReader, typesys.Stores, typesys.get_typestore


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def bag_kind(path: str | os.PathLike) -> str:
    """``'ros1'`` or ``'ros2'`` from the path's form; raises :class:`BagError` for anything else."""
    path = Path(path)
    if not path.exists():
        raise BagNotFoundError(f"{path}: no such bag (give a ROS 1 .bag file, a ROS 2 bag directory or a "
                               f"{'/'.join(_STORAGE_SUFFIXES)} file)")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file():
            raise BagError(f"{path}: a directory without metadata.yaml is not a ROS 2 bag")
        return "ros2"
    if path.suffix == ".bag":
        return "ros1"
    if path.suffix in _STORAGE_SUFFIXES:
        return "ros2"
    raise BagError(f"{path}: not a bag; expected a ROS 1 .bag file, a ROS 2 bag directory or a "
                   f"{'/'.join(_STORAGE_SUFFIXES)} file")


@dataclass(frozen=True)
class _Field:
    """A resolved field path: how to reach it in a message and what it holds."""

    path: str
    steps: tuple[str | int, ...]
    dtype: type
    width: int | None  # elements of a fixed-size array at the end; None for a scalar

    def get(self, msg: Any) -> Any:
        for step in self.steps:
            msg = msg[step] if isinstance(step, int) else getattr(msg, step)
        return msg


class Bag:
    """An open bag (see :func:`open_bag`): its topics and their numeric fields, read into arrays."""

    def __init__(self, path: Path, kind: str, reader: Any) -> None:
        self.path, self.kind, self._reader = path, kind, reader
        infos = reader.topics
        self.topics: dict[str, str] = {k: v.msgtype or _MIXED for k, v in infos.items()}
        self.message_counts: dict[str, int] = {k: int(v.msgcount) for k, v in infos.items()}
        self._defs = reader.typestore.fielddefs

    # -- message layout ---------------------------------------------------------------
    def msgtype(self, topic: str) -> str:
        if topic not in self.topics:
            raise BagError(f"{self.path}: no topic {topic!r}; the bag has {', '.join(self.topics) or 'no topics'}")
        msgtype = self.topics[topic]
        if msgtype == _MIXED:
            raise BagError(f"{self.path}: topic {topic} carries several message types; it cannot be read as one series")
        if msgtype not in self._defs:
            raise BagError(f"{self.path}: topic {topic} carries {msgtype}, whose definition the bag lacks")
        return msgtype

    def numeric_fields(self, topic: str) -> dict[str, tuple[int, ...]]:
        """``field path -> shape per message`` (``()`` scalar, ``(n,)`` fixed array) of every
        numeric field of the topic's message; variable-length sequences are left out."""
        out: dict[str, tuple[int, ...]] = {}
        self._walk(self.msgtype(topic), "", out)
        return out

    def _walk(self, msgtype: str, prefix: str, out: dict[str, tuple[int, ...]]) -> None:
        for name, (node, arg) in self._defs[msgtype][1]:
            path = prefix + name
            if node == _BASE and arg[0] in _NUMERIC:
                out[path] = ()
            elif node == _NAME:
                self._walk(arg, path + ".", out)
            elif node == _ARRAY:
                (inner, inner_arg), size = arg
                if inner == _BASE and inner_arg[0] in _NUMERIC:
                    out[path] = (size,)
                elif inner == _NAME:
                    for i in range(size):
                        self._walk(inner_arg, f"{path}[{i}].", out)

    def field_shape(self, topic: str, path: str) -> tuple[int, ...]:
        """Shape per message of a numeric field path (``()`` for a scalar); a path that is not
        a numeric field raises :class:`BagError` listing the message's numeric fields."""
        field = self._resolve(topic, path)
        return () if field.width is None else (field.width,)

    def _resolve(self, topic: str, path: str) -> _Field:
        msgtype = self.msgtype(topic)

        def fail(why: str) -> BagError:
            numeric = ", ".join(self.numeric_fields(topic)) or "none"
            return BagError(f"{self.path}: field {path!r} of {topic} ({msgtype}) {why}; its numeric fields: {numeric}")

        steps: list[str | int] = []
        node, arg = _NAME, msgtype
        for segment in path.split("."):
            match = _SEGMENT.match(segment)
            if match is None or node != _NAME:
                raise fail("does not exist")
            fields = dict(self._defs[arg][1])
            if match.group(1) not in fields:
                raise fail("does not exist")
            steps.append(match.group(1))
            node, arg = fields[match.group(1)]
            for index in map(int, re.findall(r"\d+", match.group(2))):
                if node not in (_ARRAY, _SEQUENCE):
                    raise fail(f"cannot be indexed with [{index}]")
                (inner, inner_arg), size = arg
                if node == _ARRAY and index >= size:
                    raise fail(f"has {size} elements, so no [{index}]")
                steps.append(index)
                node, arg = inner, inner_arg
        if node == _BASE and arg[0] in _NUMERIC:
            return _Field(path, tuple(steps), _NUMERIC[arg[0]], None)
        if node == _ARRAY and arg[0][0] == _BASE and arg[0][1][0] in _NUMERIC:
            return _Field(path, tuple(steps), _NUMERIC[arg[0][1][0]], int(arg[1]))
        if node == _SEQUENCE and arg[0][0] == _BASE and arg[0][1][0] in _NUMERIC:
            raise fail(f"is a variable-length sequence; pick one element, e.g. {path}[0]")
        if node == _NAME:
            raise fail(f"is a message ({arg}), not a number")
        raise fail(f"is not numeric ({arg[0] if node == _BASE else 'an array of non-numbers'})")

    def _has_header(self, topic: str) -> bool:
        return dict(self._defs[self.msgtype(topic)][1]).get("header") == (_NAME, "std_msgs/msg/Header")

    # -- reading ------------------------------------------------------------------------
    def read(self, requests: Mapping[str, Sequence[str] | None], time: str = "auto"
             ) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``topic -> (t, {field: values})`` for each requested topic in one pass over the bag.

        Args:
            requests: topic -> field paths (``None``: every numeric field).
            time: ``'auto'``, ``'header'`` or ``'receive'`` (see the module docstring).
        """
        if time not in TIME_SOURCES:
            raise ValueError(f"time must be one of {', '.join(TIME_SOURCES)}, got {time!r}")
        plan = {topic: [self._resolve(topic, f) for f in (self.numeric_fields(topic) if paths is None else paths)]
                for topic, paths in requests.items()}
        stamped = {topic: self._has_header(topic) for topic in plan}
        for topic, has_header in stamped.items():
            if time == "header" and not has_header:
                raise BagError(f"{self.path}: {topic} ({self.topics[topic]}) has no header.stamp; read it with "
                               "time='receive' or 'auto'")
        received: dict[str, list[int]] = {t: [] for t in plan}
        header: dict[str, list[int]] = {t: [] for t in plan}
        values: dict[str, list[list[Any]]] = {t: [[] for _ in fields] for t, fields in plan.items()}
        connections = [c for c in self._reader.connections if c.topic in plan]
        n = 0
        try:
            for connection, timestamp, raw in self._reader.messages(connections=connections):
                topic = connection.topic
                msg = self._reader.deserialize(raw, connection.msgtype)
                received[topic].append(timestamp)
                if stamped[topic]:
                    stamp = msg.header.stamp
                    header[topic].append(int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec))
                for column, field in zip(values[topic], plan[topic]):
                    try:
                        column.append(field.get(msg))
                    except IndexError:
                        raise BagError(f"{self.path}: message {len(received[topic]) - 1} of {topic} is too short "
                                       f"for field {field.path!r}") from None
                n += 1
        except BagError:
            raise
        except Exception as e:  # a damaged bag fails inside rosbags' parsers with any kind of error
            raise BagError(f"{self.path}: not a readable ROS bag, damaged after {n} messages: {_one_line(e)}") from None
        out = {}
        for topic, fields in plan.items():
            # unset stamps (0) are common where publishers leave the header empty
            use_header = time == "header" or (time == "auto" and stamped[topic] and min(header[topic], default=0) > 0)
            ns = np.asarray(header[topic] if use_header else received[topic], np.int64)
            columns = {}
            for field, column in zip(fields, values[topic]):
                shape = (len(column),) if field.width is None else (len(column), field.width)
                columns[field.path] = np.asarray(column, field.dtype).reshape(shape)
            out[topic] = (ns / 1e9, columns)
        return out


@contextlib.contextmanager
def open_bag(path: str | os.PathLike) -> Iterator[Bag]:
    """The bag at ``path``, open within the block; a missing or damaged bag raises :class:`BagError`."""
    path = Path(path)
    kind = bag_kind(path)
    AnyReader, Stores, get_typestore = _rosbags()
    # used only where the bag stores no message definitions (old ROS 2 bags); ROS 1 bags always do
    default = get_typestore(Stores.ROS1_NOETIC if kind == "ros1" else Stores.LATEST)
    try:
        reader = AnyReader([path], default_typestore=default)
        reader.open()
    except Exception as e:  # any parser error of a damaged file
        raise BagError(f"{path}: not a readable ROS {kind[-1]} bag: {_one_line(e)}") from None
    try:
        yield Bag(path, kind, reader)
    finally:
        reader.close()


def topics(bag: str | os.PathLike) -> dict[str, str]:
    """``topic -> message type`` (e.g. ``'/odom': 'nav_msgs/msg/Odometry'``) of the bag."""
    with open_bag(bag) as b:
        return dict(b.topics)


def read_fields(bag: str | os.PathLike, topic: str, fields: Sequence[str] | None = None, time: str = "auto"
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(t, {field: values})`` of one topic: ``t`` in float64 seconds, ``values`` with one row per
    message (see the module docstring for field paths and the time source).

    Args:
        fields: field paths; ``None``: every numeric field (scalars and fixed-size arrays).
    """
    with open_bag(bag) as b:
        return b.read({topic: fields}, time)[topic]


# -- datasets -----------------------------------------------------------------------------
_MAPPING_KEYS = ("rate_hz", "time", "observations", "action", "action_low", "action_high", "reward")


@dataclass(frozen=True)
class _Column:
    """One ``/topic:field`` entry of a mapping."""

    spec: str
    topic: str
    field: str


def _columns(value: Any, where: str) -> list[_Column]:
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)) or not entries:
        raise DatasetError(f"mapping {where}: give '/topic:field' strings, got {value!r}")
    out = []
    for entry in entries:
        topic, sep, field = str(entry).rpartition(":")
        if not isinstance(entry, str) or not sep or not topic or not field:
            raise DatasetError(f"mapping {where}: {entry!r} is not '/topic:field' (e.g. '/odom:pose.pose.position.x')")
        out.append(_Column(entry, topic.strip(), field.strip()))
    return out


def _read_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:  # PyYAML is optional; rosbags brings ruamel.yaml
        from ruamel.yaml import YAML

        return YAML(typ="safe").load(path.read_text())
    return yaml.safe_load(path.read_text())


def load_mapping(mapping: Mapping[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """The mapping as a dict (from a YAML file where a path is given), its keys checked."""
    if not isinstance(mapping, Mapping):
        path = Path(mapping)
        if not path.is_file():
            raise DatasetError(f"mapping file {path} does not exist")
        try:
            mapping = _read_yaml(path)
        except Exception as e:  # PyYAML's and ruamel's parse errors share no base class
            raise DatasetError(f"mapping file {path} is not valid YAML: {_one_line(e)}") from None
        if not isinstance(mapping, Mapping):
            raise DatasetError(f"mapping file {path} holds {type(mapping).__name__}, not a mapping of keys")
    unknown = sorted(set(map(str, mapping)) - set(_MAPPING_KEYS))
    if unknown:
        raise DatasetError(f"mapping: unknown key {', '.join(unknown)}; the keys are {', '.join(_MAPPING_KEYS)}")
    for key in ("rate_hz", "observations", "action"):
        if key not in mapping:
            raise DatasetError(f"mapping: {key!r} is missing (needed: rate_hz, observations, action)")
    rate = mapping["rate_hz"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise DatasetError(f"mapping: rate_hz must be a positive number, got {rate!r}")
    if not isinstance(mapping["observations"], Mapping) or not mapping["observations"]:
        raise DatasetError("mapping: observations must map names to '/topic:field' lists")
    if mapping.get("time", "auto") not in TIME_SOURCES:
        raise DatasetError(f"mapping: time must be one of {', '.join(TIME_SOURCES)}, got {mapping['time']!r}")
    return dict(mapping)


def _resample(t: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Values at ``grid``: linear interpolation for floats; integers and booleans hold their last
    value (interpolating a counter or a flag would invent values it never took)."""
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order].reshape(len(t), -1)
    if values.dtype.kind == "f":
        return np.stack([np.interp(grid, t, values[:, j].astype(np.float64)) for j in range(values.shape[1])], 1)
    return values[np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 1)].astype(np.float64)


def _bounds(value: Any, n: int, key: str) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value, np.float64)
    array = np.full(n, array) if array.ndim == 0 else array
    if array.shape != (n,) or not np.isfinite(array).all():
        raise DatasetError(f"mapping: {key} must be one finite number or {n} (one per action column), got {value!r}")
    return array


def from_rosbag(bags: str | os.PathLike | Sequence[str | os.PathLike],
                mapping: Mapping[str, Any] | str | os.PathLike) -> Dataset:
    """A :class:`~aquaml.data.Dataset` with one episode per bag (``docs/plots.md``, "ROS bags").

    Every mapped series is resampled at ``rate_hz`` on a clock that starts where the last
    mapped topic starts and ends where the first one ends (the span where all have data):
    floats linearly, integers and booleans holding their last value. An episode of ``T``
    steps has observations at ``T + 1`` ticks and actions at the first ``T``; the reward of a
    step is the mapped value at the step's end (zeros if unmapped). A recording ends by
    time, so each episode is truncated, never terminated.

    Actions are scaled to ``[-1, 1]`` from ``action_low``/``action_high`` (recorded units, one
    per column) or, where the mapping gives none, from the min and max recorded over all bags
    (a constant column becomes 0); the bounds go into ``metadata['action_low'/'action_high']``.

    Args:
        bags: one bag path or several.
        mapping: dict or YAML file: ``rate_hz``, ``observations`` (name -> ``'/topic:field'``
            strings), ``action``, and optionally ``reward``, ``action_low``, ``action_high``,
            ``time`` (``auto``/``header``/``receive``).
    """
    spec = load_mapping(mapping)
    paths = [Path(bags)] if isinstance(bags, (str, os.PathLike)) else [Path(b) for b in bags]
    if not paths:
        raise DatasetError("from_rosbag: no bags given")
    rate, time = float(spec["rate_hz"]), spec.get("time", "auto")
    observations = {str(k): _columns(v, f"observation {k!r}") for k, v in spec["observations"].items()}
    action = _columns(spec["action"], "action")
    reward = _columns(spec["reward"], "reward") if spec.get("reward") is not None else []
    if len(reward) > 1:
        raise DatasetError(f"mapping reward: give one '/topic:field', got {len(reward)}")
    every = [c for cols in (*observations.values(), action, reward) for c in cols]
    requests: dict[str, list[str]] = {}
    for c in every:
        requests.setdefault(c.topic, [])
        if c.field not in requests[c.topic]:
            requests[c.topic].append(c.field)

    recorded, msgtypes = [], {}
    for path in paths:
        with open_bag(path) as bag:
            data = bag.read(requests, time)
            msgtypes.update({topic: bag.topics[topic] for topic in requests})
        recorded.append({c.spec: (data[c.topic][0], data[c.topic][1][c.field]) for c in every})

    clocks = [_clock(path, series, rate) for path, series in zip(paths, recorded)]
    action_names = [name for c in action for name in _column_names(c, recorded[0][c.spec][1])]
    low = _bounds(spec.get("action_low"), len(action_names), "action_low")
    high = _bounds(spec.get("action_high"), len(action_names), "action_high")
    if low is None or high is None:
        raw = np.concatenate([np.hstack([_flat(series[c.spec][1]) for c in action]) for series in recorded])
        low = raw.min(axis=0) if low is None else low
        high = raw.max(axis=0) if high is None else high
    if (high < low).any():
        raise DatasetError(f"mapping: action_high {high.tolist()} lies below action_low {low.tolist()}")

    episodes = []
    for path, series, grid in zip(paths, recorded, clocks):
        def columns(cols: list[_Column], ticks: np.ndarray) -> np.ndarray:
            return np.hstack([_resample(*series[c.spec], ticks) for c in cols])

        act = columns(action, grid[:-1])
        _check_bounds(path, act, low, high, action_names)
        T = len(grid) - 1
        episodes.append({
            "observations": {name: columns(cols, grid) for name, cols in observations.items()},
            "action": np.where(high > low, 2.0 * (act - low) / np.where(high > low, high - low, 1.0) - 1.0, 0.0),
            "reward": columns(reward, grid[1:])[:, 0] if reward else np.zeros(T),
            "terminated": np.zeros(T, bool), "truncated": np.arange(T) == T - 1})
    metadata = {"source": "rosbag", "bags": [str(p) for p in paths], "topics": msgtypes, "rate_hz": rate,
                "time": time, "episode_start_s": [float(grid[0]) for grid in clocks],
                "observation_columns": {k: [c.spec for c in v] for k, v in observations.items()},
                "action_columns": [c.spec for c in action], "reward_column": reward[0].spec if reward else None,
                "action_low": low.tolist(), "action_high": high.tolist()}
    return Dataset.from_episodes(episodes, metadata)


def _clock(path: Path, series: Mapping[str, tuple[np.ndarray, np.ndarray]], rate: float) -> np.ndarray:
    """Ticks at ``rate`` over the span where every series has data (at least two ticks)."""
    empty = [spec for spec, (t, _) in series.items() if len(t) == 0]
    if empty:
        raise DatasetError(f"bag {path}: {empty[0].rpartition(':')[0]} has no messages")
    start = max(t.min() for t, _ in series.values())
    end = min(t.max() for t, _ in series.values())
    n = int(np.floor((end - start) * rate + 1e-6)) + 1 if end >= start else 0
    if n < 2:
        origin = min(t.min() for t, _ in series.values())
        spans = {}
        for spec, (t, _) in series.items():
            spans.setdefault(spec.rpartition(":")[0], f"{t.min() - origin:.2f}-{t.max() - origin:.2f} s")
        raise DatasetError(f"bag {path}: the mapped topics overlap for less than one step at {rate:g} Hz "
                           f"({', '.join(f'{k} {v}' for k, v in spans.items())} from the bag's first message)")
    return start + np.arange(n) / rate


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).astype(np.float64)


def _column_names(column: _Column, values: np.ndarray) -> list[str]:
    """``/topic:field`` of a scalar; ``/topic:field[i]`` for each element of a fixed-size array."""
    return [column.spec] if values.ndim == 1 else [f"{column.spec}[{i}]" for i in range(values.shape[1])]


def _check_bounds(path: Path, action: np.ndarray, low: np.ndarray, high: np.ndarray, names: list[str]) -> None:
    outside = (action < low - 1e-9 * np.abs(low)) | (action > high + 1e-9 * np.abs(high))
    if outside.any():
        row, j = map(int, np.argwhere(outside)[0])
        raise DatasetError(f"bag {path}: action {names[j]} is {action[row, j]:g} at step {row}, outside "
                           f"[action_low, action_high] = [{low[j]:g}, {high[j]:g}] of the mapping")
