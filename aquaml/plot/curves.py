"""Learning curves over seeds: the mean of each group with a 95% band, one panel per env.

Seeds rarely log at the same steps (different evaluation steps, monitor rows per episode, a run
cut short), so each group's runs are interpolated onto one grid: the union of their logged x
values over the range that every run covers (a mean over seeds that exist only in part of the
range would jump where a seed ends), thinned to at most ``max_points`` points.

A run that took no environment steps (an offline learner: ``env_steps`` is 0 in every row) is
drawn against its gradient steps, in a panel of its own. A run that cannot be drawn (no such
metric or group key, a diverged value, no row with both x and metric, runs of a group that do not
overlap) is left out, and :attr:`Curves.left_out` says which and why; only when no run is left
is that an error.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from aquaml.plot.logs import Run
from aquaml.plot.scores import final_score
from aquaml.plot.style import check_output, paper_style, pyplot, save, styles_for

CI_METHODS = ("bootstrap", "se", "sd", "none")
X_LABELS = {"env_steps": "Environment steps", "wall_time_s": "Wall time (s)", "grad_steps": "Gradient steps",
            "cpu_time_s": "CPU time of the training process (s)"}
METRIC_LABELS = {"eval_return_mean": "Evaluation return", "train_return_mean": "Training return"}


@dataclass
class Curve:
    """One group's curve: ``mean`` over ``n_runs`` runs at ``x``, the band ``[low, high]``."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: list = field(default_factory=list)  #: the runs' paths
    x_name: str = "env_steps"  #: the column ``x`` holds

    @property
    def n_runs(self) -> int:
        return len(self.runs)


class Curves(dict):
    """``panel -> group -> Curve``, and :attr:`left_out`: ``(run path, why)`` of each run not drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.left_out: list[tuple[str, str]] = []


def x_column(run: Run, metric: str, x: str, group_by: str) -> str:
    """The column ``run`` is drawn against: ``x``, or ``grad_steps`` for a run at env step 0 in
    every row (an offline learner) when ``x`` is ``env_steps``. A ``ValueError`` naming the run
    says why it cannot be drawn: a metric, x or group key it lacks, a logged non-finite value, no
    row holding both x and metric, an x that never moves."""
    final_score(run, metric)  # the metric exists, has a value, and none logged is nan/inf
    run.key(group_by)
    xv = run.values(x)
    ok = np.isfinite(xv) & np.isfinite(run.columns[metric])
    if not ok.any():
        raise ValueError(f"{run.path}: no row holds both {x} and {metric}")
    if x == "env_steps" and not xv[ok].any() and "grad_steps" in run.columns:
        return x_column(run, metric, "grad_steps", group_by)
    if ok.sum() > 1 and np.ptp(xv[ok]) == 0:
        raise ValueError(f"{run.path}: {x} stays at {xv[ok][0]:g} in every row")
    return x


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


def _why(run: Run, error: ValueError) -> str:
    """An error's message without the run's path it starts with."""
    return str(error).removeprefix(f"{run.path}: ")


def learning_curves(runs: Sequence[Run], metric: str = "eval_return_mean", x: str = "env_steps",
                    group_by: str = "algo", ci: str = "bootstrap", smoothing: int = 1, reps: int = 1000,
                    seed: int = 0, max_points: int = 500) -> Curves:
    """``panel -> group -> Curve``: panels are envs (one panel when grouping by env), offline
    runs apart (``'<env> (offline)'``, against gradient steps); runs that cannot be drawn are
    listed in ``left_out``. A ``ValueError`` when no run can be drawn."""
    band(np.zeros((1, 1)), ci)  # an unknown method fails before any file is read
    if not runs:
        raise ValueError("no runs to plot")
    out = Curves()
    members: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for run in runs:
        try:
            run_x = x_column(run, metric, x, group_by)
        except ValueError as e:
            out.left_out.append((str(run.path), _why(run, e)))
            continue
        env = "" if group_by == "env" else run.key("env") if "env" in run.config else ""
        members.setdefault((env, run_x), {}).setdefault(run.key(group_by), []).append(run)
    for (env, run_x), groups in sorted(members.items()):
        panel = env if run_x == x else f"{env} (offline)".lstrip()
        for group, group_runs in sorted(groups.items()):
            series = [_series(run.columns[run_x], run.columns[metric], smoothing) for run in group_runs]
            try:
                grid = common_grid([s[0] for s in series], max_points)
            except ValueError as e:
                out.left_out += [(str(r.path), f"group {group!r}{f' on {panel}' if panel else ''}: {e}")
                                 for r in group_runs]
                continue
            y = np.stack([np.interp(grid, sx, sy) for sx, sy in series])
            mean, low, high = band(y, ci, reps, seed, key=group)
            out.setdefault(panel, {})[group] = Curve(grid, mean, low, high, [str(r.path) for r in group_runs], run_x)
    if not out:
        path, why = out.left_out[0]
        more = f" ({len(out.left_out) - 1} more runs left out)" if len(out.left_out) > 1 else ""
        raise ValueError(f"{path}: {why}{more}")
    return out


def curves_figure(curves: Mapping[str, Mapping[str, Curve]], out: str | Path, metric: str = "eval_return_mean",
                  x: str = "env_steps", group_by: str = "algo", ci: str = "bootstrap") -> Path:
    """One panel per env (a grid of up to three columns), a line and a band per group (a marker
    with an error bar for a group evaluated once), colours kept per group name across figures;
    a panel's x axis is its curves' (``x``, or gradient steps for offline runs)."""
    out = check_output(out)
    plt = pyplot()
    from matplotlib.ticker import EngFormatter, MaxNLocator

    styles = styles_for({g for groups in curves.values() for g in groups})
    panels = sorted(curves)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 1.2, 2.6 * rows), squeeze=False,
                                 layout="constrained")
        handles: dict[str, object] = {}
        for ax, panel in zip(axes.flat, panels):
            xs = np.concatenate([c.x for c in curves[panel].values()])
            x_name = next(iter(curves[panel].values())).x_name
            for group, c in curves[panel].items():
                style = styles[group]
                if len(c.x) == 1:  # one evaluation: a line of one point would not show
                    yerr = [c.mean - c.low, c.high - c.mean] if ci != "none" and c.n_runs > 1 else None
                    handles[group] = ax.errorbar(c.x, c.mean, yerr=yerr, fmt=style.marker, color=style.color, capsize=3)
                    continue
                handles[group], = ax.plot(c.x, c.mean, color=style.color, linestyle=style.linestyle)
                if ci != "none" and c.n_runs > 1:
                    ax.fill_between(c.x, c.low, c.high, color=style.color, alpha=0.2, linewidth=0)
            ax.set_title(panel)
            ax.set_xlabel(X_LABELS.get(x_name, x_name))
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            if xs.min() >= 0:  # steps and seconds start at 0; one x alone gets room on both sides
                ax.set_xlim(0, 1.25 * xs.max() if np.ptp(xs) == 0 and xs.max() > 0 else None)
            if x_name != "wall_time_s":  # whole steps, as 20k, 1M
                ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        # one legend beside the panels (a group has one style in all of them); inside a panel, a
        # legend of many groups hides the curves
        labels = [f"{g} ({_runs_label(curves, g)})" for g in handles]
        fig.legend(list(handles.values()), labels, title=group_by, frameon=False, loc="outside right upper")
        return save(fig, out)


def _runs_label(curves: Mapping[str, Mapping[str, Curve]], group: str) -> str:
    """``n=3``: the runs of ``group`` per panel (``n=2-3`` where panels differ)."""
    counts = sorted({groups[group].n_runs for groups in curves.values() if group in groups})
    return f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]}-{counts[-1]}"
