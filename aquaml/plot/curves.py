"""Learning curves over seeds: the mean of each group with a 95% band, one panel per env.

Seeds rarely log at the same steps (different evaluation steps, monitor rows per episode, a run
cut short), so each group's runs are interpolated onto one grid: the union of their logged x
values over the range that every run covers (a mean over seeds that exist only in part of the
range would jump where a seed ends), thinned to at most ``max_points`` points.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from aquaml.plot.logs import Run
from aquaml.plot.scores import final_score, logged_columns
from aquaml.plot.stats import bootstrap_ci
from aquaml.plot.style import check_output, colors_for, paper_style, pyplot, save

CI_METHODS = ("bootstrap", "se", "sd", "none")
X_LABELS = {"env_steps": "Environment steps", "wall_time_s": "Wall time (s)", "grad_steps": "Gradient steps"}
METRIC_LABELS = {"eval_return_mean": "Evaluation return", "train_return_mean": "Training return"}


@dataclass
class Curve:
    """One group's curve: ``mean`` over ``n_runs`` runs at ``x``, the band ``[low, high]``."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: list = field(default_factory=list)  #: the runs' paths

    @property
    def n_runs(self) -> int:
        return len(self.runs)


def check_columns(runs: Sequence[Run], metric: str, x: str, group_by: str) -> None:
    """Refuse, naming the culprit and what exists, a metric, x or group key that a run lacks, and
    runs that logged no value of the metric."""
    for run in runs:
        final_score(run, metric)  # the metric exists and has a value
        if x not in run.columns:
            raise ValueError(f"{run.path}: no x column {x!r}; it has {', '.join(logged_columns(run))}")
        run.key(group_by)


def smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Trailing moving average over ``n`` points (the first points average what exists)."""
    if n <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    i = np.arange(1, len(y) + 1)
    return (c[i] - c[np.maximum(i - n, 0)]) / np.minimum(i, n)


def common_grid(xs: Sequence[np.ndarray], max_points: int = 500) -> np.ndarray:
    """The union of the runs' x values within the range every run covers, at most ``max_points``."""
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    if lo > hi:
        raise ValueError(f"the runs do not overlap: one ends at {hi:g} before another starts at {lo:g}")
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x in xs]))
    if len(grid) > max_points:
        grid = np.linspace(lo, hi, max_points)
    return grid


def band(y: np.ndarray, ci: str, reps: int = 1000, seed: int = 0,
         key: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (axis 0 of ``(n_runs, n_points)``) and its 95% band: percentile bootstrap of
    the mean (seeded by ``seed`` and ``key``), mean +- 1.96 standard errors, mean +- one standard
    deviation, or none."""
    if ci not in CI_METHODS:
        raise ValueError(f"unknown --ci {ci!r}; choose one of {', '.join(CI_METHODS)}")
    mean = y.mean(axis=0)
    n = len(y)
    if ci == "none" or n == 1:
        return mean, mean, mean
    if ci == "bootstrap":  # the grid points as the bootstrap's tasks: runs resampled at each point
        interval = bootstrap_ci([y], lambda a: a.mean(axis=-2), reps, seed=seed, key=key)
        return mean, np.asarray(interval.low), np.asarray(interval.high)
    sd = y.std(axis=0, ddof=1)
    half = 1.96 * sd / np.sqrt(n) if ci == "se" else sd
    return mean, mean - half, mean + half


def learning_curves(runs: Sequence[Run], metric: str = "eval_return_mean", x: str = "env_steps",
                    group_by: str = "algo", ci: str = "bootstrap", smoothing: int = 1, reps: int = 1000,
                    seed: int = 0, max_points: int = 500) -> dict[str, dict[str, Curve]]:
    """``panel -> group -> Curve``: panels are envs (one panel when grouping by env)."""
    band(np.zeros((1, 1)), ci)  # an unknown method fails before any file is read
    if not runs:
        raise ValueError("no runs to plot")
    check_columns(runs, metric, x, group_by)
    members: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        panel = "" if group_by == "env" else run.key("env") if "env" in run.config else ""
        members.setdefault(panel, {}).setdefault(run.key(group_by), []).append(run)
    out: dict[str, dict[str, Curve]] = {}
    for panel, groups in sorted(members.items()):
        for group, group_runs in sorted(groups.items()):
            series = []
            for run in group_runs:
                xv, yv = run.columns[x], run.columns[metric]
                ok = np.isfinite(xv) & np.isfinite(yv)
                order = np.argsort(xv[ok], kind="stable")
                series.append((xv[ok][order], smooth(yv[ok][order], smoothing)))
            try:
                grid = common_grid([s[0] for s in series], max_points)
            except ValueError as e:
                raise ValueError(f"group {group!r}{f' on {panel}' if panel else ''}: {e}") from None
            y = np.stack([np.interp(grid, sx, sy) for sx, sy in series])
            mean, low, high = band(y, ci, reps, seed, key=group)
            out.setdefault(panel, {})[group] = Curve(grid, mean, low, high, [str(r.path) for r in group_runs])
    return out


def curves_figure(curves: dict[str, dict[str, Curve]], out: str | Path, metric: str = "eval_return_mean",
                  x: str = "env_steps", group_by: str = "algo", ci: str = "bootstrap") -> Path:
    """One panel per env (a grid of up to three columns), a line and a band per group, colours
    kept per group name across figures."""
    out = check_output(out)
    plt = pyplot()
    colors = colors_for({g for groups in curves.values() for g in groups})
    panels = sorted(curves)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
        for ax, panel in zip(axes.flat, panels):
            for group, c in curves[panel].items():
                ax.plot(c.x, c.mean, color=colors[group], label=f"{group} (n={c.n_runs})")
                if ci != "none" and c.n_runs > 1:
                    ax.fill_between(c.x, c.low, c.high, color=colors[group], alpha=0.2, linewidth=0)
            ax.set_title(panel)
            ax.set_xlabel(X_LABELS.get(x, x))
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
            ax.legend(title=group_by, frameon=False)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.tight_layout()
        return save(fig, out)
