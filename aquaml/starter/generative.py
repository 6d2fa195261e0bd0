"""Training a generative model (the VAE) on dataset fields, with the RL runs' loop and files.

The same :class:`~aquaml.starter.loop.TrainingLoop` runs it (no collector: batches come from
the dataset), with the standard log, console and checkpoint hooks; evaluations report the
ELBO and the reconstruction error on held-out episodes instead of an environment's return.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from aquaml.data.dataset import DatasetError
from aquaml.model import build_model
from aquaml.model.defaults import MLPCritic
from aquaml.starter.hooks import CheckpointHook, LogHook, ProgressHook
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.starter.run_folder import RunFolder
from aquaml.tools.imports import qualname
from aquaml.tools.versions import package_versions


@dataclass
class GenerativeSummary:
    final_heldout_elbo: float
    final_heldout_recon_error: float  #: reconstruction MSE / data variance on held-out episodes
    eval_history: list  #: (gradient steps, held-out ELBO)
    run_dir: Path
    grad_steps: int


def dataset_fields(dataset, fields) -> dict[str, np.ndarray]:
    """One row per step: the named observations (at the step) or the ``'action'``."""
    out = {}
    for k in fields:
        if k == "action":
            out[k] = dataset.action
        elif k in dataset.observations:
            out[k] = dataset.transitions([k])[f"obs/{k}"]
        else:
            raise DatasetError(f"the dataset lacks field {k!r}; it holds {', '.join(sorted(dataset.observations))} "
                               "and action")
    return out


class FieldLearner:
    """Uniform batches of dataset rows for a generative model's scanned update."""

    can_overlap = False

    def __init__(self, algo, data: Mapping[str, np.ndarray], params) -> None:
        self.algo, self.data, self.params = algo, dict(data), params

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        return 0

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        idx = rng.integers(0, len(next(iter(self.data.values()))), size=(p.update_times, p.batch_size))
        return {k: v[idx] for k, v in self.data.items()}

    def update(self, state, batches):
        state, metrics = self.algo.update(state, batches)
        return state, metrics, self.params.update_times

    def checkpoint_files(self) -> dict:
        return {}

    def restore(self, path: Path) -> None:
        pass


class HeldOutHook(Hook):
    """Adds ``heldout_elbo`` and ``heldout_recon_error`` (MSE / variance) to each row."""

    def __init__(self, data: Mapping[str, np.ndarray], seed: int) -> None:
        self.data, self.key = {k: jax.numpy.asarray(v) for k, v in data.items()}, jax.random.PRNGKey(seed + 1)

    def on_display(self, loop: TrainingLoop, row: dict) -> None:
        elbo, recon = loop.algo.evaluate(loop.state, self.data, self.key)
        loop.counters.eval_history.append((loop.steps_done, float(elbo)))
        row.update(heldout_elbo=float(elbo), heldout_recon_error=float(recon))


class GenerativeTaskStarter:
    """Train ``algo`` (the VAE) on a dataset's fields; ``env`` only names where the data came from.

    Args:
        model_class_dict: ``{'encoder': cls, 'decoder': cls}``; missing roles get MLPs.
        resume: a run folder to continue from its latest checkpoint, in place.
    """

    def __init__(self, algo, params=None, model_class_dict: Mapping[str, Any] | None = None, *, env: str | None = None,
                 name: str | None = None, run_root: str | Path = "runs", progress: bool = True,
                 resume: str | Path | None = None) -> None:
        from aquaml.data.io import load_dataset

        params = params if params is not None else algo.Parameters()
        if not params.dataset:
            raise ValueError(f"{algo.name} learns from a dataset: set dataset=PATH (--set dataset=PATH)")
        if not params.dataset.startswith("minari:"):
            params = params.replace(dataset=str(Path(params.dataset).resolve()))
        unknown = set(model_class_dict or {}) - set(algo.roles)
        if unknown:
            raise ValueError(f"model_class_dict has unknown roles {sorted(unknown)}; {algo.__name__} uses {algo.roles}")
        self.params, self.algo_cls, self.env = params, algo, env
        dataset = load_dataset(params.dataset)
        if dataset.n_episodes < 2:
            raise DatasetError(f"{params.dataset} holds {dataset.n_episodes} episode; the held-out split needs two")
        held = max(1, round(params.holdout * dataset.n_episodes))
        train_data = dataset_fields(dataset.select(range(dataset.n_episodes - held)), params.fields)
        heldout = dataset_fields(dataset.select(range(dataset.n_episodes - held, dataset.n_episodes)), params.fields)
        self.dataset = dataset
        shapes = {k: v.shape[1:] for k, v in train_data.items()}
        dim = int(sum(np.prod(s, dtype=int) for s in shapes.values()))
        import keras

        keras.utils.set_random_seed(params.seed)
        classes = dict(model_class_dict or {})
        encoder = classes.get("encoder") or MLPCritic(params.fields, params.hidden_sizes, params.learning_rate,
                                                      outputs=2 * params.latent_dim)
        decoder = classes.get("decoder") or MLPCritic(("z",), params.hidden_sizes, params.learning_rate, outputs=dim)
        self.model_classes = classes
        self.models = {"encoder": build_model(encoder, "encoder", shapes, outputs=2 * params.latent_dim),
                       "decoder": build_model(decoder, "decoder", {"z": (params.latent_dim,)}, outputs=dim)}
        self.algo = algo(params, self.models, shapes)
        self.algo.observe_dataset(train_data)
        key = jax.random.PRNGKey(params.seed)
        self.loop = TrainingLoop(params, self.algo, FieldLearner(self.algo, train_data, params), None,
                                 self.algo.init_state(key), key, np.random.Generator(np.random.PCG64(params.seed)))
        self.heldout, self.progress = heldout, progress
        self.name = name or f"{algo.name}_{Path(params.dataset).stem if ':' not in params.dataset else params.dataset}"
        self.folder = None
        self._run_root = Path(run_root)
        if resume is not None:
            folder = RunFolder.open(resume)
            folder.check_resumable(algo.name, params.to_dict())
            if folder.config.get("dataset", {}).get("sha256") != dataset.digest():
                raise ValueError(f"{params.dataset} changed since {folder.path} started training on it")
            _, arrays, meta = folder.load_checkpoint()
            self.loop.load_state_dict(arrays, meta)
            folder.truncate_progress(self.loop.counters.epoch)
            self.folder = folder

    def _describe(self) -> dict:
        d = self.dataset
        return {"algo": self.algo_cls.name, "algo_class": self.algo_cls.name, "env": self.env, "name": self.name,
                "parameters": self.params.to_dict(), "seed": self.params.seed,
                "models": {r: qualname(c) if c is not None else "default" for r, c in
                           {r: self.model_classes.get(r) for r in self.algo_cls.roles}.items()},
                "dataset": {"path": self.params.dataset, "episodes": d.n_episodes, "steps": d.n_steps,
                            "sha256": d.digest()},
                "versions": package_versions(), "created": datetime.now().isoformat(timespec="seconds")}

    def save_checkpoint(self) -> Path:
        arrays, meta = self.loop.state_dict()
        models = {role: (self.models[role].fn, p) for role, p in self.algo.model_params(self.loop.state).items()}
        return self.folder.save_checkpoint(f"epoch_{self.loop.counters.epoch:08d}", state=arrays, meta=meta,
                                           models=models)

    def run(self) -> GenerativeSummary:
        if self.folder is None:
            self.folder = RunFolder.create(self._run_root, self.name, self._describe())
        p = self.params
        self.loop.hooks = [HeldOutHook(self.heldout, p.seed), LogHook(self.folder.path),
                           ProgressHook(self.name, self.progress), CheckpointHook(self.save_checkpoint, p.store_model_times)]
        self.loop.run()
        c = self.loop.counters
        last = self.loop.algo.evaluate(self.loop.state, {k: jax.numpy.asarray(v) for k, v in self.heldout.items()},
                                       jax.random.PRNGKey(p.seed + 1))
        return GenerativeSummary(float(last[0]), float(last[1]), list(c.eval_history), self.folder.path, c.grad_steps)

    @property
    def state(self):
        return self.loop.state

    def close(self) -> None:
        pass
