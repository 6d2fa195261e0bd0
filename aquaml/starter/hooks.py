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
from aquaml.tools.console import NORMAL, QUIET, VERBOSE, interactive
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


def console_row(loop: TrainingLoop, row: dict) -> dict:
    """The columns of ``row`` that mean something for this run, for the console (``progress.csv``
    keeps them all): a learner that steps no environment has no env steps or training return,
    the policy lag is 0 unless collection overlaps updates, and a training return is nan until
    the first training episode ends."""
    hidden = {"policy_lag"} if not loop.overlaps else set()
    if loop.collector is None:
        hidden |= {"env_steps", "train_return_mean", "train_episodes"}
    if not math.isfinite(row.get("train_return_mean", 0.0)):
        hidden.add("train_return_mean")
    return {k: v for k, v in row.items() if k not in hidden}


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}" if minutes >= 60 else f"{minutes}:{s:02d}"


def progress_line(title: str, loop: TrainingLoop, row: dict) -> str:
    """One line for a log row: how far, the evaluation, the training return, speed and time left."""
    unit = "env steps" if loop.collector is not None else "gradient steps"
    done, total = loop.steps_done, loop.params.total_steps
    parts = [title, f"{done:,}/{total:,} {unit}"]
    if "eval_return_mean" in row:
        parts.append(f"eval return {row['eval_return_mean']:.1f} +- {row['eval_return_std']:.1f}")
    if "heldout_elbo" in row:
        parts.append(f"held-out ELBO {row['heldout_elbo']:.3f}")
    if "train_return_mean" in console_row(loop, row):
        parts.append(f"train return {row['train_return_mean']:.1f}")
    speed = row.get("steps_per_s", 0.0)
    parts.append(f"{speed:,.0f} steps/s")
    if not loop.finished and speed > 0:
        parts.append(f"{_duration((total - done) / speed)} left")
    return " | ".join(parts)


class ProgressHook(Hook):
    """What a run prints while it trains, by ``verbosity`` (:mod:`aquaml.tools.console`): 0
    nothing; 1 one line per log row (:func:`progress_line`); 2 each log row as a table of the
    columns :func:`console_row` keeps. A progress bar (steps/s, time left, last evaluation) is
    drawn below them on a terminal or in a notebook only: in a file each redraw would be a line."""

    def __init__(self, title: str, verbosity: int = NORMAL) -> None:
        self.title, self.verbosity = title, int(verbosity)
        self.bar = None

    def on_start(self, loop: TrainingLoop) -> None:
        self.bar = tqdm(total=loop.params.total_steps, initial=loop.steps_done, dynamic_ncols=True, unit="step",
                        disable=self.verbosity == QUIET or not interactive(), desc=self.title)

    def on_epoch(self, loop: TrainingLoop) -> None:
        self.bar.update(loop.steps_done - self.bar.n)

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        if "eval_return_mean" in row:
            self.bar.set_postfix(eval=f"{row['eval_return_mean']:.1f}")
        if self.verbosity >= VERBOSE:
            c = loop.counters
            self.bar.write(format_table(console_row(loop, row), f"{self.title}  epoch {c.epoch}/{loop.total_epochs}"))
        elif self.verbosity == NORMAL:
            self.bar.write(progress_line(self.title, loop, row))

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
