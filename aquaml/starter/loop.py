"""The training loop: collect, learn, and hand a log row to the hooks every few epochs.

An *epoch* collects ``steps_per_env`` steps of every environment (none for an offline
feeder, which draws its batches from a dataset), then runs the algorithm's update on what
the feeder prepared from them. After each epoch that reaches a multiple of ``eval_every``
steps (env steps; gradient steps offline), or every ``display_interval`` epochs for parameters
without ``eval_every``, and after the last one, the
loop builds a row of counters and metrics and calls each hook's ``on_display``: evaluation,
logs, the console and checkpoints are hooks (:mod:`aquaml.starter.hooks`), and so is
anything a caller adds, e.g. a tuning trial's pruning check.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from aquaml.tools.checkpoint import arrays_to_tree, tree_to_arrays


def training_state(template, arrays: Mapping[str, np.ndarray]):
    """The algorithm's training state from a checkpoint's arrays (:meth:`TrainingLoop.state_dict`
    stores it under ``algo``-prefixed keys), shaped as ``template``."""
    return arrays_to_tree(template, {k[len("algo"):]: v for k, v in arrays.items() if k.startswith("algo")})


class Hook:
    """Something the loop calls at fixed points; override the methods you need.

    A hook ends training cleanly with :meth:`TrainingLoop.request_stop`: the current epoch
    becomes the last, with its log row, evaluation and checkpoint. An exception a hook raises
    ends training at once (an error); ``on_close`` still runs for every hook.
    """

    def on_start(self, loop: "TrainingLoop") -> None:
        """Before the first epoch of this ``run()`` (also when resuming)."""

    def on_epoch(self, loop: "TrainingLoop") -> None:
        """After every epoch's collection and update."""

    def on_display(self, loop: "TrainingLoop", row: dict) -> None:
        """Every ``eval_every`` steps and after the last epoch: ``row`` is the log row being
        built; hooks earlier in the list may have added columns (evaluation adds ``eval_*``)."""

    def on_close(self, loop: "TrainingLoop") -> None:
        """After training ends, normally or by an exception."""


@dataclass
class Counters:
    """How far training is: saved in every checkpoint, restored on resume."""

    epoch: int = 0
    env_steps: int = 0
    grad_steps: int = 0
    displays: int = 0
    wall_time_s: float = 0.0  #: everything: training, evaluation, logging, checkpoints
    train_time_s: float = 0.0  #: collecting and learning only (compilation included)
    #: CPU seconds of this process (all its threads; not its sampler processes) over the whole run:
    #: unlike the wall time, it does not grow when other work shares the machine
    cpu_time_s: float = 0.0
    eval_history: list = field(default_factory=list)  #: (env steps, mean evaluation return)
    train_returns: list = field(default_factory=list)  #: returns of finished training episodes


class TrainingLoop:
    """Trains ``algo`` on what ``feeder`` prepares from ``collector``'s epochs.

    Args:
        params: the algorithm's parameters (``n_epochs``, ``eval_every``, ``overlap``, ...).
        algo: the algorithm (see :class:`aquaml.algorithm.interface.Algorithm`).
        feeder: between data and update (:mod:`aquaml.algorithm.feeders`).
        collector: steps the environments, or None for feeders that need no env steps.
        state: the algorithm's initial training state.
        act_key: the JAX key the acting policy draws from.
        rng: the numpy generator for batch sampling and warm-up actions.
        hooks: called in order (see :class:`Hook`).
    """

    def __init__(self, params, algo, feeder, collector, state, act_key: jax.Array, rng: np.random.Generator,
                 hooks: Sequence[Hook] = ()) -> None:
        self.params, self.algo, self.feeder, self.collector = params, algo, feeder, collector
        self.state, self.act_key, self.rng = state, act_key, rng
        self.hooks = list(hooks)
        self.counters = Counters()
        self.metrics: dict = {}  #: the last update's metrics
        #: a file whose appearance ends training after the current epoch, as if it were the last
        #: (final evaluation and checkpoint included): how a tuner's pruner stops a trial cleanly
        self.stop_file: Path | None = None
        self.stopped = False  #: training ended early (the stop file, or a hook's request_stop)
        #: False where stopping alone would strand others (data-parallel learners average gradients
        #: every epoch, so they train to the end)
        self.can_stop_early = True

    def request_stop(self) -> None:
        """End training after the current epoch, as if it were the last one: called from a hook's
        ``on_epoch`` the epoch still gets its log row (evaluation, checkpoint); called from
        ``on_display`` the hooks after the caller see ``finished`` (the checkpoint hook saves)."""
        if not self.can_stop_early:
            raise RuntimeError("request_stop: data-parallel learners (learners > 1) train to the end, since the "
                               "others would wait for this one's gradients forever; set n_epochs instead")
        self.stopped = True

    @property
    def steps_per_epoch(self) -> int:
        """Environment steps per epoch (0 for offline feeders)."""
        return 0 if self.collector is None else self.params.steps_per_env * self.collector.n_envs

    @property
    def steps_done(self) -> int:
        """The run's progress in its own steps: env steps, or gradient steps for offline feeders."""
        return self.counters.env_steps if self.collector is not None else self.counters.grad_steps

    @property
    def overlaps(self) -> bool:
        """Whether collection overlaps the previous epoch's update (``overlap``, where the feeder allows it)."""
        return self.params.overlap and self.feeder.can_overlap and self.collector is not None

    @property
    def total_epochs(self) -> int:
        return self.params.n_epochs

    @property
    def finished(self) -> bool:
        return self.counters.epoch >= self.total_epochs or self.stopped

    def run(self) -> None:
        """Train until ``n_epochs`` epochs are done (the rest of them, after a resume)."""
        c = self.counters
        # overlap: epoch k is collected while epoch k-1's gradient steps run in this thread
        updater = ThreadPoolExecutor(1, "aquaml-update") if self.overlaps else None
        pending: Future | None = None
        lags: list[int] = []  # gradient steps the acting policy was behind, per epoch
        started, steps_at_start, wall_at_start = time.perf_counter(), self.steps_done, c.wall_time_s
        cpu_started, cpu_at_start = time.process_time(), c.cpu_time_s
        try:
            for hook in self.hooks:
                hook.on_start(self)
            while not self.finished:
                epoch_start = time.perf_counter()
                lags.append(self.feeder.grad_steps() if pending is not None else 0)
                data = self._collect()
                if pending is not None:
                    self._apply(pending.result())
                    pending = None
                c.env_steps += self.steps_per_epoch
                c.epoch += 1
                if self.stop_file is not None and self.stop_file.exists():
                    self.stopped = True
                batches = self.feeder.prepare(data, self.rng)
                display = self._display_due() or self.finished
                if batches is not None and updater is not None and not display:
                    pending = updater.submit(self._update, self.state, batches)
                elif batches is not None:  # evaluations and checkpoints see every update applied
                    self._apply(self._update(self.state, batches))
                c.train_time_s += time.perf_counter() - epoch_start
                for hook in self.hooks:
                    hook.on_epoch(self)
                if self.finished and not display:  # a hook asked to stop: this epoch is the last
                    display = True
                    if pending is not None:
                        self._apply(pending.result())
                        pending = None
                if display:
                    elapsed = time.perf_counter() - started
                    c.wall_time_s = wall_at_start + elapsed
                    c.cpu_time_s = cpu_at_start + time.process_time() - cpu_started
                    c.displays += 1
                    row = self._row((self.steps_done - steps_at_start) / max(elapsed, 1e-9), float(np.mean(lags)))
                    lags = []
                    for hook in self.hooks:
                        hook.on_display(self, row)
        finally:
            if updater is not None:
                updater.shutdown(wait=True)
            for hook in self.hooks:
                hook.on_close(self)

    def _display_due(self) -> bool:
        """Whether the epoch just counted reached a multiple of ``eval_every`` steps (computed from
        the epoch alone, so a resumed run displays where the uninterrupted one would)."""
        p, epoch = self.params, self.counters.epoch
        every = getattr(p, "eval_every", None)
        if every is None:  # parameters of the seed's kind, a generative model's, or epochs without steps
            interval = p.display_interval or max(1, math.ceil(p.n_epochs / getattr(p, "EVALUATIONS", 20)))
            return epoch % interval == 0
        per_epoch = self.steps_per_epoch if self.collector is not None else p.steps_per_env
        return epoch * per_epoch // every > (epoch - 1) * per_epoch // every

    def _collect(self):
        """One epoch of environment steps (None for offline feeders)."""
        if self.collector is None:
            return None
        random_steps = self.feeder.random_steps(self.counters.env_steps, self.collector.n_envs)
        data, self.act_key = self.collector.collect(self.params.steps_per_env, self.algo.actor_params(self.state),
                                                    self.act_key, self.rng, random_steps)
        self.counters.train_returns += [r for r, _ in self.collector.drain_finished()]
        return data

    def _update(self, state, batches):
        """The gradient steps of one epoch, finished (so their time is counted where they ran)."""
        state, metrics, grad_steps = self.feeder.update(state, batches)
        jax.block_until_ready(state)
        return state, metrics, grad_steps

    def _apply(self, result) -> None:
        self.state, self.metrics, grad_steps = result
        self.counters.grad_steps += grad_steps

    def _row(self, steps_per_s: float, policy_lag: float) -> dict:
        c = self.counters
        recent = c.train_returns[-10:]
        row = {"env_steps": c.env_steps, "grad_steps": c.grad_steps, "epoch": c.epoch,
               "wall_time_s": round(c.wall_time_s, 3), "train_time_s": round(c.train_time_s, 3),
               "cpu_time_s": round(c.cpu_time_s, 3),
               "steps_per_s": round(steps_per_s, 2),
               "train_return_mean": float(np.mean(recent)) if recent else float("nan"),
               "train_episodes": len(c.train_returns), "policy_lag": policy_lag}
        row.update({k: float(v) for k, v in self.metrics.items()})
        return row

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON-able metadata that restore this loop exactly (the feeder's files aside)."""
        arrays = {f"algo{k}": v for k, v in tree_to_arrays(self.state).items()}
        arrays["act_key"] = np.asarray(self.act_key)
        meta = {**asdict(self.counters), "rng": self.rng.bit_generator.state}
        if self.collector is not None:
            collector_meta, collector_arrays = self.collector.state_dict()
            arrays.update({f"collector/{k}": v for k, v in collector_arrays.items()})
            meta["collector"] = collector_meta
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.state = training_state(self.state, arrays)
        self.act_key = jax.numpy.asarray(arrays["act_key"])
        self.rng.bit_generator.state = meta["rng"]
        known = Counters.__dataclass_fields__
        self.counters = Counters(**{k: v for k, v in meta.items() if k in known})
        self.counters.eval_history = [tuple(x) for x in self.counters.eval_history]
        if self.collector is not None:
            self.collector.load_state_dict(
                meta["collector"], {k[len("collector/"):]: v for k, v in arrays.items() if k.startswith("collector/")})
