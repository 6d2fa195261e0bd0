"""Run logs: ``progress.csv``, TensorBoard event files and a console table."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Mapping

#: columns of progress.csv, one row per display (documented in docs/outputs.md)
COLUMNS = (
    "env_steps", "grad_steps", "epoch", "wall_time_s", "train_time_s", "steps_per_s",
    "eval_return_mean", "eval_return_std", "eval_episode_length",
    "train_return_mean", "train_episodes", "policy_lag",
    "q_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean",
    "value_loss", "approx_kl", "clip_fraction", "explained_variance",
)


class RunLogger:
    """Appends one row per display to ``progress.csv`` and TensorBoard."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from tensorboardX import SummaryWriter

        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "progress.csv"
        new = not self.csv_path.exists()
        self._file = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="raise")
        if new:
            self._csv.writeheader()
        self._tb = SummaryWriter(str(self.run_dir / "tb"))

    def log(self, row: Mapping[str, float]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"log columns {sorted(unknown)} are not in COLUMNS")
        self._csv.writerow({k: row.get(k, "") for k in COLUMNS})
        self._file.flush()
        step = int(row["env_steps"])
        for key, value in row.items():
            if key != "env_steps" and isinstance(value, (int, float)) and math.isfinite(value):
                group = "eval" if key.startswith("eval") else "train" if key.startswith("train") else "loss"
                self._tb.add_scalar(f"{group}/{key}", value, step)
        self._tb.flush()

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def format_table(row: Mapping[str, float], title: str = "") -> str:
    """A boxed two-column table of the row's values, for the console."""
    items = [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in row.items() if v != ""]
    width = max(len(k) for k, _ in items)
    vwidth = max(len(v) for _, v in items)
    rule = "-" * (width + vwidth + 7)
    lines = [rule] + ([f"| {title:<{width + vwidth + 3}} |", rule] if title else [])
    lines += [f"| {k:<{width}} | {v:>{vwidth}} |" for k, v in items]
    return "\n".join(lines + [rule])
