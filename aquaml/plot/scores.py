"""Final scores of runs as the score matrices of :mod:`aquaml.plot.stats`.

A run's final score is the mean of its last ``last`` logged values of the metric. Runs are
grouped (by algorithm unless told otherwise) and sorted into tasks (envs); a group's matrix
``(n_runs, n_tasks)`` needs the same number of runs on every task, since the stratified
bootstrap resamples runs within each task. Scores of several envs are only comparable once
normalised, so several tasks without a reference file are refused.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from aquaml.plot.logs import Run
from aquaml.plot.stats import normalize

NO_ENV = "(no env)"  #: the task of runs whose logs name no env (one task for all of them)


def final_score(run: Run, metric: str, last: int = 1) -> float:
    """Mean of the last ``last`` logged values of ``metric`` (``ValueError`` naming the run if
    there is none, or if a logged value is not finite)."""
    column = run.values(metric)
    values = column[~np.isnan(column)]
    if not len(values):
        raise ValueError(f"{run.path}: no {metric} row logged yet (no evaluation finished)")
    return float(np.mean(values[-last:]))


def final_scores(runs: Sequence[Run], metric: str = "eval_return_mean", group_by: str = "algo",
                 last: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """``group -> task (env) -> final score of each run``."""
    if last < 1:
        raise ValueError(f"--last must be a positive number of evaluations, got {last}")
    if not runs:
        raise ValueError("no runs to score")
    out: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        task = run.key("env") if run.config.get("env") else NO_ENV
        out.setdefault(run.key(group_by), {}).setdefault(task, []).append(final_score(run, metric, last))
    return {g: {t: np.asarray(v) for t, v in sorted(tasks.items())} for g, tasks in sorted(out.items())}


def score_matrices(raw: Mapping[str, Mapping[str, np.ndarray]],
                   reference: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, np.ndarray]:
    """``group -> (n_runs, n_tasks)`` over the tasks of every group, normalised by ``reference``."""
    tasks = sorted({t for per in raw.values() for t in per})
    if len(tasks) > 1 and reference is None:
        raise ValueError(f"scores of several envs ({', '.join(tasks)}) are only comparable normalised: "
                         "pass --normalize REF.yaml ({env: {random: R, expert: E}})")
    out = {}
    for group, per in raw.items():
        missing = [t for t in tasks if t not in per]
        if missing:
            raise ValueError(f"group {group!r} has no run on {', '.join(missing)}; every group needs runs on "
                             f"every task ({', '.join(tasks)})")
        counts = {t: len(per[t]) for t in tasks}
        if len(set(counts.values())) > 1:
            raise ValueError(f"group {group!r} has different numbers of runs per task "
                             f"({', '.join(f'{t}: {n}' for t, n in counts.items())}); the stratified bootstrap "
                             "needs the same number on each")
        matrix = np.stack([per[t] for t in tasks], axis=1)
        out[group] = normalize(matrix, reference, tasks) if reference is not None else matrix
    return out
