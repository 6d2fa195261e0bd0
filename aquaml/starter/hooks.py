"""The standard hooks of a training run: evaluation, logs, console and checkpoints.

The run session (:mod:`aquaml.starter.session`) installs them on the process that writes the run
folder, after the evaluation and the caller's own hooks (see :class:`aquaml.starter.loop.Hook`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from aquaml.sampler import Evaluator
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.tools.logger import RunLogger, format_table


class EvaluationHook(Hook):
    """Adds ``eval_return_mean``, ``eval_return_std`` and ``eval_episode_length`` to each row, and
    ``(steps, mean return)`` to the evaluation history (gradient steps for offline learners)."""

    def __init__(self, evaluator: Evaluator, episodes: int) -> None:
        self.evaluator, self.episodes = evaluator, episodes

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        returns, lengths = self.evaluator(loop.algo.actor_params(loop.state), self.episodes)
        mean = float(np.mean(returns))
        loop.counters.eval_history.append((loop.steps_done, mean))
        row.update({"eval_return_mean": mean, "eval_return_std": float(np.std(returns)),
                    "eval_episode_length": float(np.mean(lengths))})


class LogHook(Hook):
    """Appends each row to ``progress.csv`` and the TensorBoard files of the run folder."""

    def __init__(self, run_dir) -> None:
        self.run_dir = run_dir
        self.logger: RunLogger | None = None

    def on_start(self, loop: TrainingLoop) -> None:
        self.logger = RunLogger(self.run_dir)

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        self.logger.log(row)

    def on_close(self, loop: TrainingLoop) -> None:
        if self.logger is not None:
            self.logger.close()
            self.logger = None


class ProgressHook(Hook):
    """A progress bar (steps/s, ETA, last evaluation) and, if ``tables``, each row as a table."""

    def __init__(self, title: str, enabled: bool = True, tables: bool = True) -> None:
        self.title, self.enabled, self.tables = title, enabled, tables
        self.bar = None

    def on_start(self, loop: TrainingLoop) -> None:
        self.bar = tqdm(total=loop.params.total_steps, initial=loop.steps_done, dynamic_ncols=True,
                        unit="step", disable=not self.enabled, desc=self.title)

    def on_epoch(self, loop: TrainingLoop) -> None:
        self.bar.update(loop.steps_done - self.bar.n)

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        if "eval_return_mean" in row:
            self.bar.set_postfix(eval=f"{row['eval_return_mean']:.1f}")
        if self.enabled and self.tables:
            c = loop.counters
            self.bar.write(format_table(row, f"{self.title}  epoch {c.epoch}/{loop.total_epochs}"))

    def on_close(self, loop: TrainingLoop) -> None:
        if self.bar is not None:
            self.bar.close()


class CheckpointHook(Hook):
    """Writes a checkpoint every ``every`` displays and after the last epoch."""

    def __init__(self, save: Callable[[], object], every: int) -> None:
        self.save, self.every = save, every

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        if loop.counters.displays % self.every == 0 or loop.finished:
            self.save()


class StopOnNonFinite(Hook):
    """Stops a run whose losses became NaN or infinite, naming the column (instead of training on).

    It raises (an error, not a clean stop): as a caller's hook it runs before the log hook, so the
    diverged row is not written to ``progress.csv``; the run keeps its last checkpoint.
    """

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        bad = [k for k, v in loop.metrics.items() if not math.isfinite(float(v))]
        if bad:
            raise FloatingPointError(f"training diverged at env step {loop.counters.env_steps}: "
                                     f"{', '.join(sorted(bad))} became NaN or infinite")
