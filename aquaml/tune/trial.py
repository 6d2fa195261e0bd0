"""One trial: ordinary ``aquaml train`` runs (one per seed) in the tuner worker's warm process.

The tuner watches each run's ``progress.csv``: every evaluation is reported to Optuna, keyed by
env steps (seed ``k`` of ``K`` reports at ``k * budget + steps``, so trials compare at equal
steps), and when the pruner says stop, the tuner creates the run's ``STOP`` file: the run ends
after its current epoch with a final evaluation and checkpoint, a complete run folder that
``trial.json`` marks pruned. A run that exits with an error, or whose objective is NaN, fails
the trial with the end of its output kept; it is never counted as pruned.
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
from aquaml.tune.process import TrialProcess

ERROR_TAIL = 3000  #: characters of a failed run's output kept with the trial
HEARTBEAT_S = 10.0  #: how often a watched trial says it is alive
UNKNOWN_OBJECTIVE = "no objective column"  #: starts the error of a run that does not log the objective


@dataclass
class TrialOutcome:
    state: str  #: ``'complete'``, ``'pruned'`` or ``'fail'``
    value: float | None = None  #: the objective (complete trials)
    seed_values: list = field(default_factory=list)  #: each finished seed's objective
    run_dirs: list = field(default_factory=list)
    error: str = ""


def aggregate(values: Sequence[float], how: str) -> float:
    """Mean, or the interquartile mean (the middle 50% of the sorted values, fractional ends weighted)."""
    x = np.sort(np.asarray(values, np.float64))
    if how == "mean" or len(x) < 4:
        return float(np.mean(x))
    n = len(x)
    lo, hi = n * 0.25, n * 0.75
    weights = np.clip(np.minimum(np.arange(1, n + 1), hi) - np.maximum(np.arange(n), lo), 0, None)
    return float(np.sum(weights * x) / np.sum(weights))


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
              beat: Callable[[], None] = lambda: None) -> TrialOutcome:
    """Train the configuration once per seed; ``report(value, step) -> prune?`` at each evaluation.
    ``process``: the warm process that runs the trial (None: one made for this trial); ``beat()``
    every ``HEARTBEAT_S`` while a run trains."""
    if process is None:
        with TrialProcess() as process:
            return run_trial(algo, env, budget, seeds, assignments, folder, report, metric, last, how, poll_s,
                             process, beat)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = TrialOutcome("complete")
    for k, seed in enumerate(seeds):
        name = f"seed{seed}"
        log_path = folder / f"{name}.log"
        before = set((folder / name).glob("*/config.json"))  # a confirmation may run the same seed again
        process.start(train_command(algo, env, budget, seed, assignments, folder, name)[1:], log_path)
        run_dir, seen, pruned, last_beat, code = None, 0, False, 0.0, None
        try:
            while True:
                if time.time() - last_beat > HEARTBEAT_S:
                    beat()
                    last_beat = time.time()
                code = process.poll()
                if run_dir is None:
                    found = sorted(set((folder / name).glob("*/config.json")) - before)
                    run_dir = found[-1].parent if found else None
                rows = eval_rows(run_dir, metric)
                for steps, value in rows[seen:]:
                    if not pruned and math.isfinite(value) and report(value, k * budget + steps):
                        (run_dir / "STOP").touch()
                        pruned = True
                seen = len(rows)
                if code is not None:
                    break
                time.sleep(poll_s)
        finally:
            if code is None:  # the watching failed: the run must not go on beside the next trial
                process.kill()
        if run_dir is not None:
            outcome.run_dirs.append(str(run_dir))
        if code != 0:
            text = log_path.read_text(errors="replace")
            return TrialOutcome("fail", None, outcome.seed_values, outcome.run_dirs, text[-ERROR_TAIL:])
        if pruned:
            (run_dir / "trial.json").write_text(json.dumps({"state": "pruned", "seed": seed}))
            outcome.state = "pruned"
            return outcome
        columns = _header(run_dir)
        if columns and metric not in columns:  # the run finished: every column it writes is in the header now
            return TrialOutcome("fail", None, outcome.seed_values, outcome.run_dirs,
                                f"{UNKNOWN_OBJECTIVE} {metric!r}: {run_dir}/progress.csv has {', '.join(columns)}")
        values = [v for _, v in rows[-last:]]
        value = float(np.mean(values)) if values else float("nan")
        if not math.isfinite(value):
            return TrialOutcome("fail", None, outcome.seed_values, outcome.run_dirs,
                                f"{run_dir}: objective {metric} is {value} (no finite evaluation)")
        outcome.seed_values.append(value)
        (run_dir / "trial.json").write_text(json.dumps({"state": "complete", "seed": seed, "value": value}))
    outcome.value = aggregate(outcome.seed_values, how)
    return outcome


def _header(run_dir: Path | None) -> list[str]:
    if run_dir is None or not (run_dir / "progress.csv").exists():
        return []
    with open(run_dir / "progress.csv", newline="") as f:
        return next(csv.reader(f), [])


def as_dict(outcome: TrialOutcome) -> dict:
    return asdict(outcome)
