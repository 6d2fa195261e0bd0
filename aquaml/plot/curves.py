"""Learning curves over seeds: the mean of each group with a 95% band, one panel per env.

Seeds rarely log at the same steps (different evaluation steps, monitor rows per episode, a run
cut short), so each group's runs are interpolated onto one grid: the union of their logged x
values over the range that every run covers (a mean over seeds that exist only in part of the
range would jump where a seed ends), thinned to at most ``max_points`` points.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from aquaml.plot.logs import Run
from aquaml.plot.scores import final_score
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
    """Refuse, naming the culprit and what exists, a metric, x or group key that a run lacks, a
    logged non-finite value, runs with no row holding both, and an x that never moves."""
    for run in runs:
        final_score(run, metric)  # the metric exists, has a value, and none logged is nan/inf
        xv = run.values(x)
        run.key(group_by)
        ok = np.isfinite(xv) & np.isfinite(run.columns[metric])
        if not ok.any():
            raise ValueError(f"{run.path}: no row holds both {x} and {metric}")
        if ok.sum() > 1 and np.ptp(xv[ok]) == 0:
            hint = " (offline learners count gradient steps: --x grad_steps)" if x == "env_steps" else ""
            raise ValueError(f"{run.path}: {x} stays at {xv[ok][0]:g} in every row{hint}")


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


#: Student's t 97.5% quantiles for 1..30 degrees of freedom (beyond: the normal 1.96 is within 4%)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def band(y: np.ndarray, ci: str, reps: int = 1000, seed: int = 0,
         key: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (axis 0 of ``(n_runs, n_points)``) and its 95% band.

    ``bootstrap``: percentile interval of the mean over ``reps`` resamples of whole runs (a
    resampled run keeps its whole curve, so the band is as smooth as the curves), seeded by
    ``seed`` and ``key``; with few runs it is narrow (it cannot leave the runs' range). ``se``:
    mean +- t(0.975, n-1) standard errors. ``sd``: mean +- one standard deviation. ``none``."""
    if ci not in CI_METHODS:
        raise ValueError(f"unknown --ci {ci!r}; choose one of {', '.join(CI_METHODS)}")
    mean = y.mean(axis=0)
    n = len(y)
    if ci == "none" or n == 1:
        return mean, mean, mean
    if ci == "bootstrap":
        idx = np.random.default_rng([seed, zlib.crc32(key.encode())]).integers(0, n, size=(reps, n))
        chunk = max(1, int(1e7 // y.size))  # resamples at a time: memory stays under 100 MB
        means = np.concatenate([y[idx[i:i + chunk]].mean(axis=1) for i in range(0, reps, chunk)])
        low, high = np.percentile(means, [2.5, 97.5], axis=0)
        return mean, low, high
    sd = y.std(axis=0, ddof=1)
    half = (T975[n - 2] if n - 1 <= len(T975) else 1.96) * sd / np.sqrt(n) if ci == "se" else sd
    return mean, mean - half, mean + half


def _series(x: np.ndarray, y: np.ndarray, smoothing: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows holding both, in x order; of rows sharing an x (a resumed run's repeated
    evaluation), the last logged one."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], smooth(y[ok], smoothing)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    last = np.append(x[1:] != x[:-1], True)
    return x[last], y[last]


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
            series = [_series(run.columns[x], run.columns[metric], smoothing) for run in group_runs]
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
    from matplotlib.ticker import EngFormatter

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
            if x != "wall_time_s":  # steps as 20k, 1M
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.legend(title=group_by, frameon=False)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.tight_layout()
        return save(fig, out)
