"""The run folder: ``config.json``, ``progress.csv``, TensorBoard files and checkpoints.

Layout and columns are documented in ``docs/outputs.md``. ``config.json`` records the
algorithm, environment and model classes as built-in names or import paths, so that
:func:`rebuild_inputs` can build the same run again (to resume or to evaluate it). A run
folder from someone else therefore carries code references: every class it names is
imported and checked to be an algorithm, ``keras.Model``, ``RLBaseEnv`` or ``gymnasium.Env``
before it is instantiated, but importing a module runs its code.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import keras

from aquaml.algorithm.registry import resolve_algorithm
from aquaml.env import RLBaseEnv
from aquaml.env.driver import is_class_path
from aquaml.starter.run_dirs import CONFIG, find_run, new_run_dir
from aquaml.tools.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from aquaml.tools.imports import import_class

KEEP_CHECKPOINTS = 2
#: parameters that may differ when a run is resumed: they change how long and how often, not what
RESUMABLE_CHANGES = frozenset({"n_epochs", "eval_every", "display_interval", "calculate_episodes",
                               "store_model_times"})


class RunFolder:
    """One run's folder, ``<run_root>/<name>/<YYYYmmdd-HHMMSS>``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, run_root: str | Path, name: str, config: Mapping[str, Any]) -> "RunFolder":
        """A new, uniquely named folder holding ``config.json``."""
        path = new_run_dir(run_root, name)
        (path / CONFIG).write_text(json.dumps(dict(config), indent=2))
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "RunFolder":
        """The run ``path`` names: a run folder, a folder of runs (its newest) or ``<folder>/latest``
        (:func:`~aquaml.starter.run_dirs.find_run`)."""
        return cls(find_run(path))

    @property
    def config(self) -> dict:
        return json.loads((self.path / CONFIG).read_text())

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def latest_checkpoint(self) -> Path:
        """The newest complete checkpoint (an older one, with a warning, if the newest is damaged)."""
        path = latest_checkpoint(self.checkpoints)
        if path is None:
            raise FileNotFoundError(f"{self.path} holds no complete checkpoint in {self.checkpoints.name}/ (none "
                                    "saved yet, or each one damaged)")
        return path

    def save_checkpoint(self, tag: str, **contents) -> Path:
        """Write checkpoint ``tag`` (see :func:`aquaml.tools.checkpoint.save_checkpoint`), keep the newest two."""
        path = save_checkpoint(self.checkpoints, tag, **contents)
        for old in sorted(self.checkpoints.glob("epoch_*"))[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def load_checkpoint(self) -> tuple[Path, dict, dict]:
        """``(path, arrays, meta)`` of the newest complete checkpoint."""
        path = self.latest_checkpoint()
        arrays, meta = load_checkpoint(path)
        return path, arrays, meta

    def check_resumable(self, algo_name: str, params) -> None:
        """Refuse to continue this run with another algorithm or with changed parameters (names an
        older ``config.json`` used, e.g. PPO's ``update_times``, compare as their current ones)."""
        saved = self.config
        if saved["algo"] != algo_name:
            raise ValueError(f"{self.path} is a {saved['algo']} run; it cannot be resumed with {algo_name}")
        changed = sorted(k for k in params.changed_from(saved["parameters"]) if k not in RESUMABLE_CHANGES)
        if changed:
            added = [k for k in changed if k not in params.fields_in(saved["parameters"])]
            why = f" ({', '.join(added)}: new since this run started)" if added else ""
            raise ValueError(
                f"resuming {self.path} with different parameters {changed}{why} would not continue the same run; "
                f"only {', '.join(sorted(RESUMABLE_CHANGES))} may change")

    def truncate_progress(self, epoch: int) -> None:
        """Drop log rows written after the checkpoint (of ``epoch``) a resumed run restarts from."""
        path = self.path / "progress.csv"
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        column = rows[0].index("epoch")
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[column]) <= epoch]
        if len(kept) != len(rows):
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(kept)


def rebuild_inputs(config: Mapping[str, Any], where: str | Path,
                   **overrides) -> tuple[Any, dict, type, Any]:
    """The environment, model classes, algorithm class and parameters a run's ``config.json`` names.

    Returns ``(env, model_classes, algo, params)``; ``env`` is a Gymnasium id or a fresh
    instance; ``overrides`` change parameters.
    """
    algo = resolve_algorithm(config.get("algo_class") or config["algo"])
    if config["env"] is None:
        raise ValueError(f"{where} used an environment that cannot be re-imported (defined in a script); "
                         "rebuild the RLTaskStarter in Python with resume=run_dir")
    env = config["env"]
    if is_class_path(env):
        env = import_class(env, f"{where}: the environment", (RLBaseEnv, gym.Env))()
    models = {}
    for role, path in config["models"].items():
        if path is None:
            raise ValueError(f"{where}: the {role} model class was defined in a script and cannot be "
                             "re-imported; rebuild the RLTaskStarter in Python with resume=run_dir")
        if path != "default":
            models[role] = import_class(path, f"{where}: the {role} model", (keras.Model,))
    return env, models, algo, algo.Parameters.from_kwargs(**config["parameters"]).replace(**overrides)
