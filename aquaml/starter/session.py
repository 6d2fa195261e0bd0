"""One run session: the run folder over a training run's life.

Both starters (:class:`~aquaml.starter.RLTaskStarter`, :class:`~aquaml.starter.GenerativeTaskStarter`)
hand their loop to a :class:`RunSession`, which writes ``config.json`` when training starts,
saves checkpoints (the loop's state, the models' weights, the feeder's files), resumes a run
after checking it continues the same one (algorithm, parameters, dataset digest), and installs
the standard hooks around the starter's own: the starter's first (evaluation, the caller's
hooks), then logs, the console and checkpoints, so these see every column and a stop that a
hook requested.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from aquaml.starter.hooks import CheckpointHook, LogHook, ProgressHook
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.starter.run_folder import RunFolder
from aquaml.tools.imports import qualname
from aquaml.tools.versions import package_versions


def resolve_dataset_path(params):
    """``params`` with its ``dataset`` path made absolute (a run must find it again from anywhere;
    ``minari:NAME`` ids are kept)."""
    if getattr(params, "dataset", "") and not params.dataset.startswith("minari:"):
        return params.replace(dataset=str(Path(params.dataset).resolve()))
    return params


def dataset_record(path: str, dataset) -> dict:
    """What ``config.json`` records of the data a run learns from (a resume checks the digest)."""
    return {"path": path, "episodes": dataset.n_episodes, "steps": dataset.n_steps,
            "return_mean": float(dataset.returns().mean()), "sha256": dataset.digest()}


def describe(algo_name: str, algo_reference: str, env: Any, name: str, params, model_classes: Mapping[str, Any],
             dataset: dict | None = None, **extra) -> dict:
    """The ``config.json`` of a run: what it trains, on what, with which parameters and versions."""
    return {"algo": algo_name, "algo_class": algo_reference, "env": env, "name": name,
            "parameters": params.to_dict(), "seed": params.seed,
            "models": {role: (qualname(cls) if cls is not None else "default") for role, cls in model_classes.items()},
            **({"dataset": dataset} if dataset is not None else {}), **extra,
            "versions": package_versions(), "created": datetime.now().isoformat(timespec="seconds")}


class RunSession:
    """The run folder of ``loop``: created at :meth:`start`, or continued by :meth:`resume`.

    Args:
        name: the run's name, its folder under ``run_root``.
        loop: the training loop whose state is saved and restored.
        feeder: its feeder (its files go into each checkpoint).
        models: role -> checked model (their weights go into each checkpoint as Keras files).
        progress: what training prints: False (0) nothing; True (1) a line per evaluation, under a
            progress bar on a terminal; 2 a table of each log row (see :class:`~aquaml.starter.ProgressHook`).
        dataset: the dataset the run learns from, if any (its digest is checked on resume).
    """

    def __init__(self, name: str, run_root: str | Path, loop: TrainingLoop, feeder, models: Mapping[str, Any],
                 progress: bool | int = True, dataset=None) -> None:
        self.name, self.run_root, self.loop, self.feeder = name, Path(run_root), loop, feeder
        self.models, self.progress, self.dataset = models, progress, dataset
        self.folder: RunFolder | None = None

    @property
    def run_dir(self) -> Path | None:
        return self.folder.path if self.folder is not None else None

    def resume(self, run_dir: str | Path, algo_name: str, dataset_path: str = "") -> None:
        """Continue the run in ``run_dir`` from its newest checkpoint, in place; refuses another
        algorithm, changed parameters or a changed dataset."""
        folder = RunFolder.open(run_dir)
        folder.check_resumable(algo_name, self.loop.params)
        if self.dataset is not None and folder.config.get("dataset", {}).get("sha256") != self.dataset.digest():
            raise ValueError(f"{dataset_path} changed since {folder.path} started training on it (its SHA-256 as "
                             "read now differs from config.json's; a legacy .npy folder also reads differently since "
                             "time-limit ends became truncations): resuming would not continue the same run")
        path, arrays, meta = folder.load_checkpoint()
        self.loop.load_state_dict(arrays, meta)
        self.feeder.restore(path)
        folder.truncate_progress(self.loop.counters.epoch)
        self.folder = folder

    def start(self, config: Mapping[str, Any], hooks: Sequence[Hook] = (), stop_file: bool = True) -> None:
        """Create the folder (unless resumed) and install ``hooks`` followed by the standard ones.

        ``stop_file``: ``RUN_DIR/STOP`` ends training cleanly after the current epoch (a resume
        continues past an earlier stop).
        """
        if self.folder is None:
            self.folder = RunFolder.create(self.run_root, self.name, config)
        if stop_file:
            self.loop.stop_file = self.folder.path / "STOP"
            self.loop.stop_file.unlink(missing_ok=True)
        every = self.loop.params.store_model_times
        self.loop.hooks = [*hooks, LogHook(self.folder.path), ProgressHook(self.name, self.progress),
                           CheckpointHook(self.save_checkpoint, every)]

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the loop, the models' weights and the feeder's files."""
        loop = self.loop
        arrays, meta = loop.state_dict()
        models = {role: (self.models[role].fn, p) for role, p in loop.algo.model_params(loop.state).items()}
        return self.folder.save_checkpoint(f"epoch_{loop.counters.epoch:08d}", state=arrays, meta=meta,
                                           models=models, extra=self.feeder.checkpoint_files())
