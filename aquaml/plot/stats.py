"""Aggregate statistics over runs and tasks as Agarwal et al. (2021) recommend (rliable).

Scores come as ``{group: array (n_runs, n_tasks)}`` of normalised scores: one row per run (seed),
one column per task; groups (algorithms) may differ in ``n_runs`` but not in ``n_tasks``.

Point estimates follow rliable's definitions exactly (IQM over all runs x tasks; mean and median
of the per-task mean scores; optimality gap over all runs x tasks). Intervals come from one
stratified bootstrap (:func:`bootstrap_ci`): runs are resampled with replacement within each task,
independently per task and per score array, and the interval is the percentile interval (rliable's
default). Every metric here reduces the last two axes of an array ``(..., n_runs, n_tasks)``, so a
whole chunk of bootstrap resamples is evaluated in one numpy call.

Pure numpy: no scipy or rliable at run time.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

#: a metric maps scores ``(..., n_runs, n_tasks)`` to ``(...)`` or ``(..., k)``
Metric = Callable[[np.ndarray], np.ndarray]

#: bootstrap resamples are drawn and evaluated in chunks of about this many scores, which bounds
#: memory (indices + resampled scores, 16 bytes each) to ~64 MB whatever ``reps`` is
_CHUNK_ELEMENTS = 1 << 22


class Interval(NamedTuple):
    """A point estimate and its confidence interval (floats, or arrays for vector metrics)."""

    point: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray


# ----------------------------------------------------------------------------- validation


def _as_scores(x, name: str) -> np.ndarray:
    """``x`` as a float array ``(n_runs, n_tasks)``; ValueError naming ``name`` otherwise."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: scores are not numbers ({e})") from None
    if a.ndim != 2:
        raise ValueError(f"{name}: scores must be 2-D (n_runs, n_tasks), got shape {a.shape}"
                         + ("; for a single task pass x[:, None]" if a.ndim == 1 else ""))
    if a.size == 0:
        raise ValueError(f"{name}: no scores (shape {a.shape}: {a.shape[0]} runs, {a.shape[1]} tasks)")
    bad = ~np.isfinite(a)
    if bad.any():
        where = ", ".join(f"run {r} task {t}" for r, t in np.argwhere(bad)[:3])
        more = f" and {int(bad.sum()) - 3} more" if bad.sum() > 3 else ""
        raise ValueError(f"{name}: {int(bad.sum())} non-finite (NaN/inf) scores at {where}{more}")
    return a


def check_scores(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``scores`` validated: a non-empty ``{group: (n_runs, n_tasks)}`` of finite floats with one
    ``n_tasks`` for all groups. Raises ValueError naming the group at fault."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping {group: array (n_runs, n_tasks)}")
    out = {str(g): _as_scores(x, f"group {g!r}") for g, x in scores.items()}
    tasks = {g: a.shape[1] for g, a in out.items()}
    if len(set(tasks.values())) > 1:
        raise ValueError("groups have different numbers of tasks: "
                         + ", ".join(f"{g!r}: {n}" for g, n in tasks.items()))
    return out


def _check_bootstrap_args(reps: int, confidence: float, seed: int) -> None:
    if not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


# ----------------------------------------------------------------------------- point estimates


def _scalar(v: np.ndarray) -> float | np.ndarray:
    return float(v) if np.ndim(v) == 0 else v


def iqm(x: np.ndarray) -> float | np.ndarray:
    """Interquartile mean over all runs x tasks: the 25 % trimmed mean of the flattened scores
    (``scipy.stats.trim_mean(x, 0.25, axis=None)``). ``x``: ``(..., n_runs, n_tasks)``."""
    x = np.asarray(x, dtype=float)
    flat = x.reshape(*x.shape[:-2], -1)
    n = flat.shape[-1]
    cut = int(0.25 * n)
    # the same partition scipy does, so the mean is summed in the same order: bit-equal results
    part = np.partition(flat, (cut, n - cut - 1), axis=-1)
    return _scalar(np.mean(part[..., cut:n - cut], axis=-1))


def mean(x: np.ndarray) -> float | np.ndarray:
    """Mean over tasks of the per-task mean score (rliable's ``aggregate_mean``)."""
    return _scalar(np.mean(np.mean(np.asarray(x, dtype=float), axis=-2), axis=-1))


def median(x: np.ndarray) -> float | np.ndarray:
    """Median over tasks of the per-task mean score (rliable's ``aggregate_median``); with one
    task it equals :func:`mean`."""
    return _scalar(np.median(np.mean(np.asarray(x, dtype=float), axis=-2), axis=-1))


def optimality_gap(x: np.ndarray, gamma: float = 1.0) -> float | np.ndarray:
    """Mean of ``max(gamma - x, 0)`` over all runs x tasks: how far below ``gamma`` the scores fall."""
    x = np.asarray(x, dtype=float)
    return _scalar(gamma - np.mean(np.minimum(x, gamma), axis=(-2, -1)))


#: the four aggregates of rliable's interval plot, in its order
METRICS: dict[str, Metric] = {"Median": median, "IQM": iqm, "Mean": mean, "Optimality Gap": optimality_gap}


def _all_metrics(x: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(f(x)) for f in METRICS.values()], axis=-1)


def aggregate_metrics(x: np.ndarray) -> dict[str, float]:
    """``{metric name: value}`` for every metric in :data:`METRICS`; ``x``: ``(n_runs, n_tasks)``."""
    x = _as_scores(x, "scores")
    return {name: float(f(x)) for name, f in METRICS.items()}


def run_score_profile(x: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of all runs x tasks scoring above each ``tau`` (rliable's score distribution);
    ``x``: ``(..., n_runs, n_tasks)`` -> ``(..., len(taus))``."""
    x = np.asarray(x, dtype=float)
    taus = np.asarray(taus, dtype=float)
    # one pass per tau keeps memory at the size of x rather than x times len(taus)
    return np.stack([np.mean(x > t, axis=(-2, -1)) for t in taus], axis=-1)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) per task averaged over tasks; ``x``: ``(..., n, T)``, ``y``: ``(..., m, T)``."""
    n, m = x.shape[-2], y.shape[-2]
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    z = np.concatenate([np.broadcast_to(x, batch + x.shape[-2:]), np.broadcast_to(y, batch + y.shape[-2:])], axis=-2)
    # Mann-Whitney through mid-ranks of the pooled sample: U_x = (sum of x's ranks) - n(n+1)/2,
    # O(N log N) per task instead of n*m comparisons; ranks are half-integers, so U is exact
    order = np.argsort(z, axis=-2)
    s = np.take_along_axis(z, order, axis=-2)
    N = n + m
    pos = np.arange(N).reshape(N, 1)
    first = np.ones(s.shape, dtype=bool)
    first[..., 1:, :] = s[..., 1:, :] != s[..., :-1, :]
    last = np.ones(s.shape, dtype=bool)
    last[..., :-1, :] = first[..., 1:, :]
    tie_start = np.maximum.accumulate(np.where(first, pos, 0), axis=-2)
    tie_end = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, N - 1), axis=-2), axis=-2), axis=-2)
    rank = (tie_start + tie_end) / 2 + 1
    u = np.sum(np.where(order < n, rank, 0.0), axis=-2) - n * (n + 1) / 2
    return np.mean(u / (n * m), axis=-1)


def _check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_scores(x, "x"), _as_scores(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y have different numbers of tasks: x: {x.shape[1]}, y: {y.shape[1]}")
    return x, y


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): per task the Mann-Whitney U statistic of ``x`` over ``y`` divided by ``n * m``
    (ties count 1/2), averaged over tasks. ``x``: ``(n, n_tasks)``, ``y``: ``(m, n_tasks)``."""
    x, y = _check_pair(x, y)
    return float(_improvement(x, y))


# ----------------------------------------------------------------------------- bootstrap


def _rng(seed: int, key: str) -> np.random.Generator:
    # keyed by the group's name: a group's interval does not depend on which other groups are
    # passed or their order, so a figure and a table made with one seed show the same numbers
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def bootstrap_ci(arrays: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], reps: int = 2000,
                 confidence: float = 0.95, seed: int = 0, key: str = "") -> Interval:
    """Stratified bootstrap percentile interval of ``statistic(*arrays)``.

    Each array ``(n_runs_i, n_tasks)`` has its runs resampled with replacement within each task
    (column), independently of the other columns and arrays; each chunk of resamples is drawn as
    ``rng.integers(0, n_runs_i, size=(chunk, n_runs_i, n_tasks))`` per array in order, with
    ``rng = default_rng([seed, crc32(key)])``. ``statistic`` must reduce the last two axes of
    every argument and keep the leading (resample) axis. Interval bounds are the
    ``(1 -/+ confidence) / 2`` percentiles of the resampled statistic (linear interpolation).
    """
    _check_bootstrap_args(reps, confidence, seed)
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    point = np.asarray(statistic(*[a[None] for a in arrays]))
    if point.shape[:1] != (1,):
        raise ValueError(f"the statistic must reduce only the last two axes (n_runs, n_tasks) and keep "
                         f"leading axes: one resample gave shape {point.shape}, expected (1, ...)")
    point = point[0]
    rng = _rng(seed, key)
    per_rep = sum(a.size for a in arrays)
    chunk = max(1, _CHUNK_ELEMENTS // per_rep)
    stats = []
    for start in range(0, reps, chunk):
        c = min(chunk, reps - start)
        resampled = []
        for a in arrays:
            idx = rng.integers(0, a.shape[0], size=(c,) + a.shape)
            resampled.append(a[idx, np.arange(a.shape[1])])
        s = np.asarray(statistic(*resampled))
        if s.shape[:1] != (c,) or s.shape[1:] != point.shape:
            raise ValueError(f"the statistic must reduce only the last two axes (n_runs, n_tasks): "
                             f"{c} resamples gave shape {s.shape}, expected {(c,) + point.shape}")
        stats.append(s)
    alpha = (1.0 - confidence) / 2
    low, high = np.percentile(np.concatenate(stats), [100 * alpha, 100 * (1 - alpha)], axis=0)
    return Interval(_scalar(point), _scalar(low), _scalar(high))


def stratified_bootstrap_ci(scores: Mapping[str, np.ndarray], metric_fn: Metric, reps: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """``{group: (point, low, high)}`` of ``metric_fn`` with stratified-bootstrap percentile CIs.

    ``metric_fn`` reduces the last two axes of ``(..., n_runs, n_tasks)`` (every metric here
    does) to a scalar or a vector; deterministic for a given ``seed``."""
    scores = check_scores(scores)
    return {g: bootstrap_ci([x], metric_fn, reps, confidence, seed, key=g) for g, x in scores.items()}


def aggregate_intervals(scores: Mapping[str, np.ndarray], reps: int = 2000, confidence: float = 0.95,
                        seed: int = 0) -> dict[str, dict[str, Interval]]:
    """``{group: {metric: (point, low, high)}}`` for :data:`METRICS`, all from one set of resamples
    (the same draws as :func:`stratified_bootstrap_ci` with one of those metrics and ``seed``)."""
    both = stratified_bootstrap_ci(scores, _all_metrics, reps, confidence, seed)
    return {g: {name: Interval(float(iv.point[k]), float(iv.low[k]), float(iv.high[k]))
                for k, name in enumerate(METRICS)} for g, iv in both.items()}


def performance_profile(scores: Mapping[str, np.ndarray], taus: Sequence[float] | np.ndarray,
                        reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """``{group: (profile, low, high)}``, arrays over ``taus``: the fraction of runs x tasks with a
    score above each tau (rliable's run-score distribution) with stratified-bootstrap CIs."""
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0 or not np.isfinite(taus).all():
        raise ValueError(f"taus must be a non-empty 1-D array of finite thresholds, got shape {taus.shape}")
    return stratified_bootstrap_ci(scores, lambda x: run_score_profile(x, taus), reps, confidence, seed)


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> Interval:
    """P(X > Y) (:func:`probability_of_improvement`) with a CI from resampling the runs of ``x``
    and of ``y`` independently within each task (rliable's ``StratifiedIndependentBootstrap``)."""
    x, y = _check_pair(x, y)
    return bootstrap_ci([x, y], _improvement, reps, confidence, seed)


def per_task_ci(raw: Mapping[str, Mapping[str, np.ndarray]], reps: int = 2000, confidence: float = 0.95,
                seed: int = 0) -> dict[str, dict[str, Interval]]:
    """``{group: {task: (mean, low, high)}}``: mean final score over runs per task with a bootstrap
    CI over runs. ``raw[group][task]`` holds one score per run; run counts may differ."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("raw must be a non-empty mapping {group: {task: scores per run}}")
    out: dict[str, dict[str, Interval]] = {}
    for g, tasks in raw.items():
        if not isinstance(tasks, Mapping) or not tasks:
            raise ValueError(f"group {g!r}: expected a non-empty mapping {{task: scores per run}}")
        out[str(g)] = {}
        for t, v in tasks.items():
            a = np.asarray(v, dtype=float)
            if a.ndim != 1:
                raise ValueError(f"group {g!r} task {t!r}: scores per run must be 1-D, got shape {a.shape}")
            a = _as_scores(a[:, None], f"group {g!r} task {t!r}")
            out[str(g)][str(t)] = bootstrap_ci([a], mean, reps, confidence, seed, key=f"{g}/{t}")
    return out


# ----------------------------------------------------------------------------- normalisation


class Reference(dict):
    """``{task: {"random": r, "expert": e}}``; ``source`` names the file it came from, if any."""

    def __init__(self, entries: Mapping[str, Mapping[str, float]], source: str | None = None):
        super().__init__()
        self.source = source
        where = f" in {source}" if source else ""
        for task, e in entries.items():
            if not isinstance(e, Mapping):
                raise ValueError(f"reference for task {task!r}{where}: expected {{random, expert}} "
                                 f"or {{min, max}}, got {e!r}")
            lo, hi = e.get("random", e.get("min")), e.get("expert", e.get("max"))
            try:
                lo, hi = float(lo), float(hi)
            except (TypeError, ValueError):
                raise ValueError(f"reference for task {task!r}{where}: needs numeric random/expert "
                                 f"(or min/max), got {dict(e)!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
                raise ValueError(f"reference for task {task!r}{where}: random ({lo}) and expert ({hi}) "
                                 f"must be finite and differ")
            self[str(task)] = {"random": lo, "expert": hi}


def load_reference(path: str | Path) -> Reference:
    """Reference scores from a YAML file ``{task: {random: r, expert: e}}`` (or ``min``/``max``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())[:150]})") from None
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{path}: expected a mapping {{task: {{random: r, expert: e}}}}, got {type(data).__name__}")
    return Reference(data, source=str(path))


def normalize(raw: np.ndarray | Mapping[str, np.ndarray], reference: Mapping[str, Mapping[str, float]],
              tasks: Sequence[str] | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """``(raw - random) / (expert - random)`` per task.

    ``raw`` is either ``{task: scores}`` (returns the same mapping normalised) or an array whose
    last axis runs over ``tasks`` (e.g. ``(n_runs, n_tasks)``; returns an array)."""
    ref = reference if isinstance(reference, Reference) else Reference(reference)

    def entry(task: str) -> tuple[float, float]:
        if task not in ref:
            where = f"reference file {ref.source}" if ref.source else "the reference"
            raise ValueError(f"task {task!r} is missing from {where} (tasks present: {', '.join(sorted(ref)) or 'none'})")
        return ref[task]["random"], ref[task]["expert"]

    if isinstance(raw, Mapping):
        if tasks is not None:
            raise ValueError("tasks is given by the keys of raw; pass tasks only with an array")
        out = {}
        for t, v in raw.items():
            lo, hi = entry(str(t))
            out[t] = (np.asarray(v, dtype=float) - lo) / (hi - lo)
        return out
    if tasks is None:
        raise ValueError("normalize(array) needs tasks: the task name of each column (last axis)")
    a = np.asarray(raw, dtype=float)
    tasks = [str(t) for t in tasks]
    if a.ndim == 0 or a.shape[-1] != len(tasks):
        raise ValueError(f"raw has shape {a.shape} but {len(tasks)} tasks were named: the last axis must match")
    lo, hi = np.array([entry(t) for t in tasks]).T
    return (a - lo) / (hi - lo)
