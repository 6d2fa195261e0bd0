"""Figures of ROS bag topics: numeric fields over time and 3-D trajectories, bags overlaid.

``aquaml plot rosbag BAG... --topics /odom,/cmd_vel [--fields f1,f2] [--out FILE] [--list]``.
Every (topic, field) series gets its own subplot over the seconds since the bag's first
plotted message, one colour per bag. Topics whose message has a position (any field path
ending in ``position.x/y/z`` or ``translation.x/y/z``: PoseStamped, Odometry,
PoseWithCovarianceStamped, TransformStamped, ...) also go into a 3-D trajectory figure,
written beside the main one as ``<stem>_trajectory<suffix>``.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aquaml.data.rosbag import TIME_SOURCES, Bag, BagError, open_bag
from aquaml.plot.style import check_output, colors_for, paper_style, pyplot, save

_POSITIONS = ("position", "translation")


def _position(numeric: dict[str, tuple[int, ...]]) -> tuple[str, str, str] | None:
    """The first ``...position.{x,y,z}`` (or ``translation``) scalar triple of a message, if any."""
    for path, shape in numeric.items():
        prefix, _, leaf = path.rpartition(".")
        if leaf == "x" and shape == () and prefix.rpartition(".")[2] in _POSITIONS:
            triple = (f"{prefix}.x", f"{prefix}.y", f"{prefix}.z")
            if all(numeric.get(p) == () for p in triple):
                return triple
    return None


def _default_fields(numeric: dict[str, tuple[int, ...]]) -> list[str]:
    # arrays (covariances: 36 columns each) and header stamps would bury the signals
    return [p for p, shape in numeric.items() if shape == () and not p.startswith("header.")]


def _fields_per_topic(bag: Bag, topics: Sequence[str], fields: Sequence[str] | None) -> dict[str, list[str]]:
    """``topic -> field paths``: ``/topic:field`` entries go to their topic, plain ones to every
    topic that has them; without ``fields``, each topic's scalar fields."""
    if fields is None:
        chosen = {t: _default_fields(bag.numeric_fields(t)) for t in topics}
    else:
        chosen = {t: [] for t in topics}
        for entry in fields:
            topic, sep, field = entry.rpartition(":")
            if sep and topic not in chosen:
                raise ValueError(f"--fields {entry}: topic {topic} is not among the plotted topics {', '.join(topics)}")
            owners = [topic] if sep else [t for t in topics if _has(bag, t, field)]
            if sep or len(topics) == 1:
                bag.field_shape(owners[0] if owners else topics[0], field)  # raises, naming that topic's fields
            if not owners:
                fields_of = "; ".join(f"{t}: {', '.join(bag.numeric_fields(t))}" for t in topics)
                raise BagError(f"{bag.path}: field {field!r} is in none of the topics {', '.join(topics)}; their "
                               f"numeric fields: {fields_of}")
            for t in owners:
                chosen[t].append(field)
    for t, paths in chosen.items():
        if not paths:
            raise BagError(f"{bag.path}: nothing to plot for {t}; its numeric fields: "
                           f"{', '.join(bag.numeric_fields(t)) or 'none'} (choose with {t}:FIELD)")
    return chosen


def _has(bag: Bag, topic: str, field: str) -> bool:
    try:
        bag.field_shape(topic, field)
    except BagError:
        return False
    return True


def _bag_labels(bags: Sequence[Path]) -> dict[Path, str]:
    """Legend label per bag: its file name, with its folder where two bags share a name."""
    names = [b.name for b in bags]
    return {b: (f"{b.parent.name}/{b.name}" if names.count(b.name) > 1 else b.name) for b in bags}


def plot_bags(bags: str | os.PathLike | Sequence[str | os.PathLike], topics: Sequence[str],
              fields: Sequence[str] | None = None, out: str | os.PathLike = "rosbag.png",
              time: str = "auto") -> dict[str, Any]:
    """Plot the numeric fields of ``topics`` of every bag, bags overlaid one colour each.

    Args:
        bags: bag paths (ROS 1 ``.bag``, ROS 2 directory, ``.db3`` or ``.mcap``).
        topics: topics to plot; every bag must have them.
        fields: field paths (``pose.pose.position.x``, ``covariance[0]``; a fixed-size array
            gives one series per element), each plotted for every topic that has it, or
            ``/topic:field`` for one topic. Default: each topic's scalar fields except the header.
        out: the figure (``.png``, ``.pdf`` or ``.svg``).
        time: ``'auto'``, ``'header'`` or ``'receive'`` (:mod:`aquaml.data.rosbag`).

    Returns:
        ``figure`` and ``trajectory`` (paths; ``trajectory`` is ``None`` without pose topics),
        ``series`` (``{bag: {topic: {field: (seconds since the bag's first plotted message,
        values)}}}``) and ``trajectories`` (``{bag: {topic: (n, 3) positions}}``), bags keyed
        by their path as given.
    """
    out = check_output(out)
    paths = [Path(bags)] if isinstance(bags, (str, os.PathLike)) else [Path(b) for b in bags]
    topics = list(topics)
    if not paths or not topics:
        raise ValueError("plot_bags needs at least one bag and one topic")
    series: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    trajectories: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        with open_bag(path) as bag:
            chosen = _fields_per_topic(bag, topics, fields)
            poses = {t: p for t in topics if (p := _position(bag.numeric_fields(t))) is not None}
            requests = {t: list(dict.fromkeys(chosen[t] + list(poses.get(t, ())))) for t in topics}
            data = bag.read(requests, time)
        firsts = [t[0] for t, _ in data.values() if len(t)]
        t0 = min(firsts) if firsts else 0.0
        series[str(path)] = {topic: {name: (t - t0, y) for field in chosen[topic]
                                     for name, y in _columns(field, data[topic][1][field])}
                             for topic, (t, _) in data.items()}
        trajectories[str(path)] = {topic: np.stack([data[topic][1][f] for f in triple], 1).astype(np.float64)
                                   for topic, triple in poses.items()}
    panels = {str(p): {(topic, name) for topic, per in series[str(p)].items() for name in per} for p in paths}
    every = set().union(*panels.values())
    for path, have in panels.items():  # bags recorded with other message definitions: no panel drops a bag
        if have != every:
            topic, name = sorted(every - have)[0]
            raise BagError(f"{path}: topic {topic} has no field {name}, which another bag has; choose --fields "
                           "that every bag holds")
    labels = _bag_labels(paths)
    colors = colors_for(labels.values())
    with paper_style():
        figure = _plot_series(series, paths, labels, colors, out)
        trajectory = None
        if any(trajectories.values()):
            trajectory = _plot_trajectories(trajectories, paths, labels, colors,
                                            out.with_name(f"{out.stem}_trajectory{out.suffix}"))
    return {"figure": figure, "trajectory": trajectory, "series": series, "trajectories": trajectories}


def _columns(field: str, values: np.ndarray):
    """``(name, 1-D values)`` per plotted line: a fixed-size array gives one per element."""
    if values.ndim == 1:
        return [(field, values)]
    return [(f"{field}[{i}]", values[:, i]) for i in range(values.shape[1])]


def _plot_series(series, paths, labels, colors, out: Path) -> Path:
    plt = pyplot()
    panels = list(dict.fromkeys((topic, name) for per_bag in series.values()
                                for topic, per_topic in per_bag.items() for name in per_topic))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.2 * nrows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.set_visible(False)
            continue
        topic, name = panels[k]
        for path in paths:
            t, y = series[str(path)][topic][name]
            ax.plot(t, y, color=colors[labels[path]], label=labels[path])
        ax.set_title(topic)
        ax.set_ylabel(name)
        ax.set_xlabel("time [s]")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(4, len(names)), frameon=False)
    fig.tight_layout()
    return save(fig, out)


def _plot_trajectories(trajectories, paths, labels, colors, out: Path) -> Path:
    plt = pyplot()
    fig = plt.figure(figsize=(4.5, 4.0))
    ax = fig.add_subplot(projection="3d")
    styles = ("-", "--", ":", "-.")
    topics = list(dict.fromkeys(t for per_bag in trajectories.values() for t in per_bag))
    for path in paths:
        for topic, xyz in trajectories[str(path)].items():
            style = styles[topics.index(topic) % len(styles)]
            label = labels[path] if len(topics) == 1 else f"{labels[path]} {topic}"
            ax.plot(xyz[:, 0], xyz[:, 1], xyz[:, 2], style, color=colors[labels[path]], label=label)
            if len(xyz):
                ax.scatter(*xyz[0], color=colors[labels[path]], s=12)  # where the recording starts
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.set_title("trajectory" if len(topics) > 1 else f"trajectory ({topics[0]})")
    ax.legend(loc="upper left")
    return save(fig, out)


# -- command line ---------------------------------------------------------------------------
def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``rosbag`` on ``aquaml plot``'s subparsers."""
    p = subparsers.add_parser(
        "rosbag", help="numeric topics of ROS 1/2 bags over time, and 3-D trajectories",
        description="Plot numeric fields of ROS bag topics (ROS 1 .bag, ROS 2 directory, .db3 or .mcap; no ROS "
                    "installation needed), several bags overlaid. Pose topics also give a 3-D trajectory figure, "
                    "written as <out stem>_trajectory<suffix>.")
    p.add_argument("bags", nargs="+", metavar="BAG", help="bag files or ROS 2 bag directories")
    p.add_argument("--topics", metavar="T1,T2", help="topics to plot (see --list)")
    p.add_argument("--fields", metavar="F1,F2",
                   help="field paths, e.g. pose.pose.position.x or /cmd_vel:linear.x (default: every scalar field "
                        "but the header)")
    p.add_argument("--time", choices=TIME_SOURCES, default="auto",
                   help="message time: header.stamp, the recorder's receive time, or auto (header.stamp where set)")
    p.add_argument("--out", default="rosbag.png", metavar="FILE",
                   help="figure: .png, .pdf or .svg (default rosbag.png)")
    p.add_argument("--list", action="store_true", help="list each bag's topics, types and message counts, then stop")
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.list:
        for path in args.bags:
            with open_bag(path) as bag:
                print(f"{path} (ROS {bag.kind[-1]})")
                width = max((len(t) for t in bag.topics), default=0)
                for topic, msgtype in bag.topics.items():
                    print(f"  {topic:<{width}}  {msgtype}  {bag.message_counts[topic]} msgs")
        return 0
    topics = _split(args.topics)
    if not topics:
        raise ValueError("name the topics to plot with --topics T1,T2 (--list shows each bag's topics)")
    result = plot_bags(args.bags, topics, _split(args.fields), args.out, args.time)
    print(f"wrote {result['figure']}")
    if result["trajectory"] is not None:
        print(f"wrote {result['trajectory']}")
    return 0
