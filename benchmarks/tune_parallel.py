"""Tuning throughput: trials per hour with 1 and 2 workers, and each trial's overhead.

One study per worker count, the same fixed-budget trials (SAC on Pendulum-v1, random sampler,
no pruning, so every trial trains its whole budget); trials per hour from the study's wall
time. A trial's overhead is its wall time beyond the training itself: process start, imports,
building the agent, loading compiled programs from the persistent cache, the final evaluation
and checkpoint (the run's ``train_time_s`` and evaluations are the training). Targets: 2
workers >= 1.8x the trials per hour of 1 worker on 2 cores; overhead <= 2 s per trial.

Run from the repository root:  python benchmarks/tune_parallel.py [--trials 6] [--budget 3000]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from sac_vs_sb3 import print_header, verdict  # noqa: E402

from aquaml.tune import TuneConfig, tune  # noqa: E402

SPACE = {"learning_rate": {"type": "log_float", "low": 3e-4, "high": 3e-3},
         "batch_size": {"type": "categorical", "choices": [128, 256]}}


def run(workers: int, trials: int, budget: int, root: Path) -> tuple[float, list[float]]:
    """Study wall seconds and each trial's overhead in seconds."""
    cfg = TuneConfig("sac", "Pendulum-v1", trials, budget, workers=workers, sampler="random", pruner="none",
                     study=f"w{workers}", folder=str(root / f"w{workers}"), space=dict(SPACE),
                     sets={"display_interval": "1000", "calculate_episodes": "2", "hidden_sizes": "64,64"})
    start = time.perf_counter()
    study = tune(cfg, log=lambda *_: None)
    wall = time.perf_counter() - start
    overheads = []
    for t in study.trials:
        run_dir = Path(t.user_attrs["run_dirs"][0])
        with open(run_dir / "progress.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
        trial_s = (t.datetime_complete - t.datetime_start).total_seconds()
        overheads.append(trial_s - float(last["wall_time_s"]))
    return wall, overheads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--budget", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    print_header(None)
    with tempfile.TemporaryDirectory() as tmp:
        run(1, 1, args.budget, Path(tmp) / "warm")  # fills the persistent compilation cache first
        results = {w: run(w, args.trials, args.budget, Path(tmp)) for w in (1, 2)}
    for w, (wall, overheads) in results.items():
        print(f"{w} worker(s): {args.trials} trials in {wall:.1f} s = {3600 * args.trials / wall:.0f} trials/h; "
              f"overhead per trial {sum(overheads) / len(overheads):.2f} s (max {max(overheads):.2f} s)")
    speedup = results[1][0] / results[2][0]
    overhead = sum(results[1][1]) / len(results[1][1])
    print(f"\n2 workers / 1 worker: {speedup:.2f}x trials per hour ({verdict(speedup >= 1.8)}); overhead "
          f"{overhead:.2f} s per trial with 1 worker ({verdict(overhead <= 2.0)})")


if __name__ == "__main__":
    main()
