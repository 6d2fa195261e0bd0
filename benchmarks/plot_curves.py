"""Time to a learning-curve figure: ``aquaml plot curves`` over 100 run folders of 1,000 rows each.

The run folders are AquaML's own format (``config.json`` + ``progress.csv`` with every column a
SAC run writes), two algorithms x 50 seeds on one env, evaluation rows at every row. The time is
the whole command in a fresh process, as a user runs it: interpreter start, imports (bytecode
cached by an untimed first run), reading, interpolation, bootstrap bands (1,000 resamples per
group) and writing the PNG. Target: <= 3 s.

Run from the repository root:  python benchmarks/plot_curves.py [--runs 100] [--rows 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from sac_vs_sb3 import print_header, verdict  # noqa: E402

COLUMNS = ("env_steps,grad_steps,epoch,wall_time_s,train_time_s,steps_per_s,eval_return_mean,eval_return_std,"
           "eval_episode_length,train_return_mean,train_episodes,policy_lag,q_loss,actor_loss,alpha,alpha_loss,"
           "entropy,q_mean,value_loss,approx_kl,clip_fraction,explained_variance")


def write_runs(root: Path, runs: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(runs):
        algo = ("sac", "td3")[i % 2]
        folder = root / f"{algo}_s{i}" / "20260101-000000"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"algo": algo, "env": "Pendulum-v1", "name": folder.parent.name,
                                                        "seed": i, "parameters": {"seed": i, "learning_rate": 3e-4}}))
        steps = np.arange(1, rows + 1) * 1000
        ret = -1500 + 1300 * (1 - np.exp(-steps / 2e5)) + rng.normal(0, 50, rows)
        body = np.column_stack([steps, steps, np.arange(1, rows + 1), steps / 500, steps / 520, np.full(rows, 500.0),
                                ret, np.full(rows, 20.0), np.full(rows, 200.0), ret - 30, np.arange(rows),
                                np.zeros(rows), rng.random((rows, 6))])
        lines = [COLUMNS] + [",".join(f"{v:.6g}" for v in row) + ",,,," for row in body]
        (folder / "progress.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("XLA_FLAGS", "")  # print_header reports it; plotting runs no XLA
    print_header(None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        write_runs(root, args.runs, args.rows)
        cmd = [sys.executable, "-m", "aquaml.cli", "plot", "curves", str(root), "--out", str(Path(tmp) / "c.png")]
        # one untimed run first: Python's bytecode cache, as any installed package has it
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
    best, median = min(times), float(np.median(times))
    print(f"aquaml plot curves, {args.runs} runs x {args.rows} rows: median {median:.2f} s, best {best:.2f} s "
          f"over {args.repeat} runs ({verdict(median <= 3.0)} target <= 3 s)")


if __name__ == "__main__":
    main()
