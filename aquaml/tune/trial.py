"""One trial: ordinary ``aquaml train`` runs (one per seed) in the tuner worker's warm process.

The tuner watches each run's ``progress.csv`` and reports to Optuna on a grid that every trial
and every seed share: :data:`REPORT_POINTS` points at 1/N, 2/N, ..., N/N of the budget, whatever
a configuration's epoch length and evaluation interval (PPO's ``rollout_length`` moves its
evaluations). At each point a run counts with its latest evaluation at or before it (its final
evaluation, past the budget when the epochs round up, counts as at the budget), and the trial
reports there the aggregate (``--aggregate``) over the seeds that have passed the point: the seeds
run one after another, and seed ``k`` refines the values that seeds ``0..k-1`` put on the same
points instead of reporting at steps of its own. The pruner judges each point with the values up
to it. When it says stop, the tuner creates the run's ``STOP`` file: the run ends after its current
epoch with a final evaluation and checkpoint, a complete run folder that ``trial.json`` marks
pruned. A run that exits with an error, or whose objective is NaN, fails the trial with the end of
its output kept; it is never counted as pruned.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from aquaml.plot.logs import complete_lines
from aquaml.plot.stats import iqm
from aquaml.tune.process import TrialProcess

ERROR_TAIL = 3000  #: characters of a failed run's output kept with the trial
HEARTBEAT_S = 10.0  #: how often a watched trial says it is alive
UNKNOWN_OBJECTIVE = "no objective column"  #: starts the error of a run that does not log the objective
REPORT_POINTS = 10  #: intermediate values at 10 %, 20 %, ..., 100 % of the budget (Optuna's steps 1..10)
WARMUP_FRACTION = 0.25  #: no pruning in the first quarter of a run: early RL evaluations are mostly noise


@dataclass
class TrialOutcome:
    state: str  #: ``'complete'``, ``'pruned'`` or ``'fail'``
    value: float | None = None  #: the objective (complete trials)
    seed_values: list = field(default_factory=list)  #: each finished seed's objective
    run_dirs: list = field(default_factory=list)
    error: str = ""


def aggregate(values: Sequence[float], how: str) -> float:
    """Mean, or the interquartile mean of :func:`aquaml.plot.stats.iqm` (rliable's: the 25 %
    trimmed mean), over seeds."""
    x = np.asarray(values, np.float64)
    return float(np.mean(x)) if how == "mean" else float(iqm(x[:, None]))


def first_pruned_point(points: int = REPORT_POINTS) -> int:
    """The first report point past the warm-up: Optuna's ``n_warmup_steps`` and the first rung
    of successive halving and Hyperband."""
    return int(points * WARMUP_FRACTION) + 1


def grid_values(rows: Sequence[tuple[int, float]], budget: int, finished: bool,
                points: int = REPORT_POINTS) -> dict[int, tuple[int, float]]:
    """``{point: (steps, value)}`` for the report points a run has passed: point ``i`` lies at
    ``i / points * budget`` steps, and its evaluation is the run's latest at or before it.
    A point is passed once an evaluation at or after it exists, or when the run has finished
    (its last evaluation then counts as at most the budget). Points before the first evaluation,
    and non-finite values, are left out."""
    if finished and rows:
        rows = [*rows[:-1], (min(rows[-1][0], budget), rows[-1][1])]
    reached = rows[-1][0] if rows else -1
    out: dict[int, tuple[int, float]] = {}
    latest, j = None, 0
    for point in range(1, points + 1):
        if not finished and reached * points < budget * point:
            break
        while j < len(rows) and rows[j][0] * points <= budget * point:
            latest, j = rows[j], j + 1
        if latest is not None and math.isfinite(latest[1]):
            out[point] = latest
    return out


class GridReport:
    """A trial's reports: each seed's values on the report grid, sent as their aggregate over
    the seeds per point through ``report(value, point) -> prune?``; ``record(value, point)``
    instead where the pruner must not judge yet: the seed's evaluation there lies in the first
    quarter of its run (sparse evaluations: the third point may still hold one from 10 %)."""

    def __init__(self, budget: int, how: str, report: Callable[[float, int], bool],
                 record: Callable[[float, int], None] | None = None) -> None:
        self.budget, self.how, self.report = budget, how, report
        self.record = record or report
        self.seeds: list[dict[int, float]] = []

    def next_seed(self) -> None:
        self.seeds.append({})

    def update(self, rows: Sequence[tuple[int, float]], finished: bool) -> bool:
        """Report the points the current seed's run has newly passed; True when the pruner says stop."""
        current = self.seeds[-1]
        for point, (steps, value) in grid_values(rows, self.budget, finished).items():
            if point in current:
                continue
            current[point] = value
            value = aggregate([s[point] for s in self.seeds if point in s], self.how)
            if steps < WARMUP_FRACTION * self.budget:
                self.record(value, point)
            elif self.report(value, point):
                return True
        return False


def eval_rows(run_dir: Path | None, metric: str) -> list[tuple[int, float]]:
    """``(steps, metric)`` of each evaluation row written so far: env steps, or gradient steps
    for offline learners (whose env steps stay 0); a last line still being written is skipped."""
    if run_dir is None or not (run_dir / "progress.csv").exists():
        return []
    lines = complete_lines((run_dir / "progress.csv").read_text())
    out = []
    for row in csv.DictReader(lines):
        if row.get(metric) not in (None, ""):
            steps = int(float(row["env_steps"])) or int(float(row["grad_steps"]))
            out.append((steps, float(row[metric])))
    return out


def train_command(algo: str, env: str, budget: int, seed: int, assignments: dict[str, str],
                  run_root: Path | None = None, name: str | None = None) -> list[str]:
    """The ``aquaml train`` command of one run of a configuration."""
    cmd = ["aquaml", "train", algo, env, "--steps", str(budget), "--seed", str(seed)]
    for key, value in assignments.items():
        cmd += ["--set", f"{key}={value}"]
    if run_root is not None:
        cmd += ["--run-root", str(run_root), "--name", name]
    return cmd


def run_trial(algo: str, env: str, budget: int, seeds: Sequence[int], assignments: dict[str, str], folder: Path,
              report: Callable[[float, int], bool], metric: str = "eval_return_mean", last: int = 3,
              how: str = "mean", poll_s: float = 0.2, process: TrialProcess | None = None,
              beat: Callable[[], None] = lambda: None,
              record: Callable[[float, int], None] | None = None) -> TrialOutcome:
    """Train the configuration once per seed; ``report(value, point) -> prune?`` at each report
    point (1..:data:`REPORT_POINTS`) with the aggregate over the seeds that passed it, or
    ``record(value, point)`` (default: ``report``, its answer ignored) while the evaluation there
    lies in the run's first quarter. ``process``: the warm process that runs the trial (None: one
    made for this trial); ``beat()`` every ``HEARTBEAT_S`` while a run trains."""
    if process is None:
        with TrialProcess() as process:
            return run_trial(algo, env, budget, seeds, assignments, folder, report, metric, last, how, poll_s,
                             process, beat, record)
    folder.mkdir(parents=True, exist_ok=True)
    outcome, grid = TrialOutcome("complete"), GridReport(budget, how, report, record)
    for seed in seeds:
        grid.next_seed()
        name = f"seed{seed}"
        run = watch_run(process, train_command(algo, env, budget, seed, assignments, folder, name)[1:], folder, name,
                        grid, metric, poll_s, beat)
        if run.dir is not None:
            outcome.run_dirs.append(str(run.dir))
        value, error = seed_objective(run, metric, last)
        if error:
            return TrialOutcome("fail", None, outcome.seed_values, outcome.run_dirs, error)
        if run.pruned:
            _mark(run.dir, {"state": "pruned", "seed": seed})
            outcome.state = "pruned"
            return outcome
        outcome.seed_values.append(value)
        _mark(run.dir, {"state": "complete", "seed": seed, "value": value})
    outcome.value = aggregate(outcome.seed_values, how)
    return outcome


@dataclass
class WatchedRun:
    """One seed's run as the tuner saw it."""

    log: Path  #: its output
    dir: Path | None = None  #: its run folder, once it exists
    code: int | None = None  #: its exit status, once it has ended
    pruned: bool = False  #: the tuner created its STOP file
    rows: list = field(default_factory=list)  #: ``(steps, objective)`` of its evaluations


def watch_run(process: TrialProcess, argv: list[str], folder: Path, name: str, grid: GridReport, metric: str,
              poll_s: float, beat: Callable[[], None]) -> WatchedRun:
    """Start ``aquaml <argv>`` in ``process`` and follow it to its end: its evaluations go to
    ``grid``, and its STOP file is created when the pruner says stop."""
    run = WatchedRun(folder / f"{name}.log")
    before = set((folder / name).glob("*/config.json"))  # a confirmation may run the same seed again
    process.start(argv, run.log)
    last_beat = 0.0
    try:
        while True:
            if time.time() - last_beat > HEARTBEAT_S:
                beat()
                last_beat = time.time()
            run.code = process.poll()
            run.dir = run.dir or _new_run_dir(folder / name, before)
            _follow(run, grid, metric)
            if run.code is not None:
                return run
            time.sleep(poll_s)
    finally:
        if run.code is None:  # the watching failed: the run must not go on beside the next trial
            process.kill()


def _new_run_dir(root: Path, before: set[Path]) -> Path | None:
    found = sorted(set(root.glob("*/config.json")) - before)
    return found[-1].parent if found else None


def _follow(run: WatchedRun, grid: GridReport, metric: str) -> None:
    """Read the run's evaluations so far and report them; STOP it when the pruner says so."""
    run.rows = eval_rows(run.dir, metric)
    if not run.pruned and grid.update(run.rows, finished=run.code == 0):
        (run.dir / "STOP").touch()
        run.pruned = True


def seed_objective(run: WatchedRun, metric: str, last: int) -> tuple[float | None, str]:
    """``(objective, "")`` of a run that ended well (None when it was pruned), or ``(None, error)``:
    its exit status, a missing objective column or an objective that is not finite."""
    if run.code != 0:
        return None, run.log.read_text(errors="replace")[-ERROR_TAIL:]
    if run.pruned:
        return None, ""
    columns = _header(run.dir)
    if columns and metric not in columns:  # the run finished: every column it writes is in the header now
        return None, f"{UNKNOWN_OBJECTIVE} {metric!r}: {run.dir}/progress.csv has {', '.join(columns)}"
    values = [v for _, v in run.rows[-last:]]
    value = float(np.mean(values)) if values else float("nan")
    if not math.isfinite(value):
        return None, f"{run.dir}: objective {metric} is {value} (no finite evaluation)"
    return value, ""


def _mark(run_dir: Path, record: dict) -> None:
    (run_dir / "trial.json").write_text(json.dumps(record))


def _header(run_dir: Path | None) -> list[str]:
    if run_dir is None or not (run_dir / "progress.csv").exists():
        return []
    with open(run_dir / "progress.csv", newline="") as f:
        return next(csv.reader(f), [])


def as_dict(outcome: TrialOutcome) -> dict:
    return asdict(outcome)
