"""Run logs: ``progress.csv``, TensorBoard event files and a console table."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Mapping

#: columns of progress.csv, one row per display (documented in docs/outputs.md)
COLUMNS = (
    "env_steps", "grad_steps", "epoch", "wall_time_s", "train_time_s", "cpu_time_s", "steps_per_s",
    "eval_return_mean", "eval_return_std", "eval_episode_length",
    "train_return_mean", "train_episodes", "policy_lag",
    "q_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean",
    "value_loss", "approx_kl", "clip_fraction", "explained_variance",
)


class RunLogger:
    """Appends one row per display to ``progress.csv`` and TensorBoard.

    The CSV starts with :data:`COLUMNS`; a metric outside them (an algorithm of the user's
    own) becomes a new column at its first appearance, earlier rows left empty there.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from aquaml.tools.imports import import_without_torch

        SummaryWriter = import_without_torch("tensorboardX").SummaryWriter
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "progress.csv"
        self.columns = list(COLUMNS)
        if self.csv_path.exists():  # a resumed run keeps its header
            with open(self.csv_path, newline="") as f:
                self.columns = next(csv.reader(f), None) or self.columns
        else:
            self._rewrite([])
        self._file = open(self.csv_path, "a", newline="")
        self._tb = SummaryWriter(str(self.run_dir / "tb"))

    def _rewrite(self, rows: list[dict]) -> None:
        """Write the whole file with the current columns (atomically: a crash keeps the old one)."""
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.csv_path)

    def log(self, row: Mapping[str, float]) -> None:
        new = [k for k in row if k not in self.columns]
        if new:
            self._file.close()
            with open(self.csv_path, newline="") as f:
                old = list(csv.DictReader(f))
            self.columns += new
            self._rewrite(old)
            self._file = open(self.csv_path, "a", newline="")
        csv.DictWriter(self._file, fieldnames=self.columns, restval="").writerow(dict(row))
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
    """A boxed two-column table of the row's values, for the console; as wide as its title."""
    items = [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in row.items() if v != ""]
    width = max(len(k) for k, _ in items)
    vwidth = max(max(len(v) for _, v in items), len(title) - width - 3)  # the title fits inside the border
    rule = "-" * (width + vwidth + 7)
    lines = [rule] + ([f"| {title:<{width + vwidth + 3}} |", rule] if title else [])
    lines += [f"| {k:<{width}} | {v:>{vwidth}} |" for k, v in items]
    return "\n".join(lines + [rule])
