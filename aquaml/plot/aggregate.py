"""rliable-style figures and tables from score dicts ``{group: array (n_runs, n_tasks)}``.

Every function returns (or prints) the numbers it draws, computed by :mod:`aquaml.plot.stats`;
reading run folders into score dicts is the job of :mod:`aquaml.plot.logs`.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from aquaml.plot.stats import (METRICS, Interval, aggregate_intervals, check_scores, per_task_ci,
                               performance_profile, probability_of_improvement_ci)
from aquaml.plot.style import check_output, colors_for, paper_style, pyplot, save

XLABEL = "Normalized score"

#: the score table's metric columns, in order
TABLE_METRICS = ("IQM", "Mean", "Median", "Optimality Gap")


# ----------------------------------------------------------------------------- figures


def _interval_rows(ax, rows: Sequence[tuple[float, float, float]], colors: Sequence[str], height: float = 0.6) -> None:
    """One horizontal CI bar and a point tick per row, first row on top (rliable's interval plot)."""
    for i, ((p, lo, hi), c) in enumerate(zip(rows, colors)):
        ax.barh(i, hi - lo, left=lo, height=height, color=c, alpha=0.75)
        ax.vlines(p, i - height / 2, i + height / 2, color="k", linewidth=1.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


def aggregate_figure(scores: Mapping[str, np.ndarray], out: str | Path, reps: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> dict[str, dict[str, Interval]]:
    """Median, IQM, mean and optimality gap of each group with stratified-bootstrap CIs, one
    panel per metric, written to ``out``. Returns ``{group: {metric: (point, low, high)}}``."""
    out = check_output(out)
    numbers = aggregate_intervals(scores, reps, confidence, seed)
    groups = list(numbers)
    colors = colors_for(groups)
    plt = pyplot()
    with paper_style():
        fig, axes = plt.subplots(1, len(METRICS), figsize=(1.8 * len(METRICS), 0.7 + 0.3 * len(groups)),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax, name in zip(axes[0], METRICS):
            _interval_rows(ax, [numbers[g][name] for g in groups], [colors[g] for g in groups])
            ax.set_title(name)
            ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        axes[0, 0].set_yticks(range(len(groups)), groups)
        fig.supxlabel(XLABEL, fontsize=plt.rcParams["axes.labelsize"])
        save(fig, out)
    return numbers


def profile_figure(scores: Mapping[str, np.ndarray], out: str | Path, taus: Sequence[float] | np.ndarray | None = None,
                   reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Performance profiles (fraction of runs scoring above tau) with CI bands, written to ``out``.

    ``taus`` defaults to 101 thresholds spanning the scores and at least [0, 1]. Returns
    ``{"taus": array, "profiles": {group: (profile, low, high)}}``."""
    out = check_output(out)
    scores = check_scores(scores)
    if taus is None:
        every = np.concatenate([x.ravel() for x in scores.values()])
        taus = np.linspace(min(0.0, every.min()), max(1.0, every.max()), 101)
    taus = np.asarray(taus, dtype=float)
    profiles = performance_profile(scores, taus, reps, confidence, seed)
    colors = colors_for(profiles)
    plt = pyplot()
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 2.6), layout="constrained")
        for g, (p, lo, hi) in profiles.items():
            ax.plot(taus, p, color=colors[g], label=g)
            ax.fill_between(taus, lo, hi, color=colors[g], alpha=0.2, linewidth=0)
        ax.set_xlabel(f"{XLABEL} (\N{GREEK SMALL LETTER TAU})")
        ax.set_ylabel("Fraction of runs with score > \N{GREEK SMALL LETTER TAU}")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False)
        save(fig, out)
    return {"taus": taus, "profiles": profiles}


def improvement_figure(scores: Mapping[str, np.ndarray], out: str | Path,
                       pairs: Sequence[tuple[str, str]] | None = None, reps: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> dict[tuple[str, str], Interval]:
    """P(X > Y) with stratified-bootstrap CIs for each pair ``(X, Y)``, written to ``out``.

    ``pairs`` defaults to every pair of groups in the order given (P(Y > X) = 1 - P(X > Y)).
    Returns ``{(X, Y): (point, low, high)}``."""
    out = check_output(out)
    scores = check_scores(scores)
    if pairs is None:
        pairs = list(combinations(scores, 2))
    pairs = [(str(x), str(y)) for x, y in pairs]
    if not pairs:
        raise ValueError("no pairs to compare: give at least two groups or a pair")
    for x, y in pairs:
        for g in (x, y):
            if g not in scores:
                raise ValueError(f"pair ({x!r}, {y!r}): no group {g!r} (groups: {', '.join(scores)})")
        if x == y:
            raise ValueError(f"pair ({x!r}, {y!r}) compares a group with itself")
    numbers = {(x, y): probability_of_improvement_ci(scores[x], scores[y], reps, confidence, seed)
               for x, y in pairs}
    colors = colors_for(scores)
    plt = pyplot()
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 0.7 + 0.3 * len(pairs)), layout="constrained")
        _interval_rows(ax, list(numbers.values()), [colors[x] for x, _ in pairs])
        ax.axvline(0.5, color="0.5", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_yticks(range(len(pairs)), [x for x, _ in pairs])
        right = ax.twinx()  # Y's names on the right, as in rliable's plot
        right.set_ylim(ax.get_ylim())
        right.set_yticks(range(len(pairs)), [y for _, y in pairs])
        right.grid(False)
        right.spines["right"].set_visible(False)
        right.tick_params(axis="y", length=0)
        ax.set_xlabel("P(X > Y)")
        save(fig, out)
    return numbers


# ----------------------------------------------------------------------------- tables


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _cell(text: str, fmt: str) -> str:
    if fmt == "latex":
        return "".join(_TEX.get(c, c) for c in text)
    return text.replace("|", r"\|")


def _render(header: Sequence[str], rows: Sequence[Sequence[str]], align: str, note: str, fmt: str) -> str:
    """A Markdown table or a booktabs LaTeX ``tabular``; ``align`` has one ``l``/``r`` per column."""
    if fmt == "md":
        rule = "|" + "|".join("---" if a == "l" else "--:" for a in align) + "|"
        lines = ["| " + " | ".join(_cell(c, fmt) for c in r) + " |" for r in (header, *rows)]
        return "\n".join([lines[0], rule, *lines[1:], "", note]) + "\n"
    body = [" & ".join(_cell(c, fmt) for c in r) + r" \\" for r in rows]
    return "\n".join([rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_cell(c, fmt) for c in header) + r" \\",
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}", f"% {note}"]) + "\n"


def _check_fmt(fmt: str) -> None:
    if fmt not in ("md", "latex"):
        raise ValueError(f"fmt must be 'md' or 'latex', got {fmt!r}")


def format_interval(iv: Interval, digits: int = 3) -> str:
    """``point [low, high]`` with ``digits`` decimals."""
    return f"{iv.point:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def _note(confidence: float, reps: int, how: str) -> str:
    return f"point estimate [{confidence:.0%} CI], percentile {how}, {reps} resamples"


def score_table(scores: Mapping[str, np.ndarray], fmt: str = "md", reps: int = 2000, confidence: float = 0.95,
                seed: int = 0, digits: int = 3) -> str:
    """One row per group: run count, then IQM, mean, median and optimality gap as
    ``point [low, high]``; Markdown (``fmt="md"``) or a booktabs LaTeX ``tabular`` (``"latex"``).
    The numbers are :func:`aquaml.plot.stats.aggregate_intervals` with the same arguments."""
    _check_fmt(fmt)
    scores = check_scores(scores)
    numbers = aggregate_intervals(scores, reps, confidence, seed)
    rows = [[g, str(scores[g].shape[0])] + [format_interval(numbers[g][m], digits) for m in TABLE_METRICS]
            for g in numbers]
    return _render(["Group", "Runs", *TABLE_METRICS], rows, "lr" + "l" * len(TABLE_METRICS),
                   _note(confidence, reps, "stratified bootstrap over runs within each task"), fmt)


def per_task_table(raw: Mapping[str, Mapping[str, np.ndarray]], fmt: str = "md", reps: int = 2000,
                   confidence: float = 0.95, seed: int = 0, digits: int = 1) -> str:
    """One row per task, one column per group: the mean final score over runs ``mean [low, high]``
    with a bootstrap CI over runs (:func:`aquaml.plot.stats.per_task_ci`).

    ``raw[group][task]`` holds one (raw or normalised) final score per run; tasks missing for a
    group show as an en dash. A group's run count goes in its header when it is the same on every
    task, else in each cell."""
    _check_fmt(fmt)
    numbers = per_task_ci(raw, reps, confidence, seed)
    tasks = list(dict.fromkeys(t for per in numbers.values() for t in per))
    runs = {g: {str(t): len(np.ravel(v)) for t, v in raw[g].items()} for g in raw}
    runs = {str(g): r for g, r in runs.items()}
    header, same = ["Task"], {}
    for g in numbers:
        counts = set(runs[g].values())
        same[g] = len(counts) == 1
        header.append(f"{g} (n={counts.pop()})" if same[g] else g)
    missing = "\N{EN DASH}" if fmt == "md" else "--"
    rows = []
    for t in tasks:
        row = [t]
        for g in numbers:
            if t not in numbers[g]:
                row.append(missing)
                continue
            cell = format_interval(numbers[g][t], digits)
            row.append(cell if same[g] else f"{cell} (n={runs[g][t]})")
        rows.append(row)
    return _render(header, rows, "l" * (1 + len(numbers)), _note(confidence, reps, "bootstrap over runs"), fmt)
