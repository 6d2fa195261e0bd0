"""Training a generative model (the VAE) on dataset fields, with the RL runs' loop and files.

The same :class:`~aquaml.starter.loop.TrainingLoop` runs it (no collector: the algorithm's
feeder draws batches of the dataset's fields) in a :class:`~aquaml.starter.session.RunSession`
with the standard log, console and checkpoint hooks; evaluations report the
ELBO and the reconstruction error on held-out episodes instead of an environment's return.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jax
import keras
import numpy as np

from aquaml.algorithm.feeders import feeder_of
from aquaml.algorithm.interface import check_instance, check_parameters
from aquaml.data import DatasetError, load_dataset
from aquaml.model import build_model
from aquaml.model.defaults import MLPCritic
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.starter.session import RunSession, dataset_record, describe, resolve_dataset_path


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
        progress: what training prints, as for :class:`~aquaml.starter.RLTaskStarter`.
    """

    def __init__(self, algo, params=None, model_class_dict: Mapping[str, Any] | None = None, *, env: str | None = None,
                 name: str | None = None, run_root: str | Path = "runs", progress: bool | int = True,
                 resume: str | Path | None = None) -> None:
        params = check_parameters(algo, params)
        if not params.dataset:
            raise ValueError(f"{algo.name} learns from a dataset: set dataset=PATH (--set dataset=PATH)")
        params = resolve_dataset_path(params)
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
        keras.utils.set_random_seed(params.seed)
        classes = dict(model_class_dict or {})
        encoder = classes.get("encoder") or MLPCritic(params.fields, params.hidden_sizes, params.learning_rate,
                                                      outputs=2 * params.latent_dim)
        decoder = classes.get("decoder") or MLPCritic(("z",), params.hidden_sizes, params.learning_rate, outputs=dim)
        self.model_classes = classes
        self.models = {"encoder": build_model(encoder, "encoder", shapes, outputs=2 * params.latent_dim),
                       "decoder": build_model(decoder, "decoder", {"z": (params.latent_dim,)}, outputs=dim)}
        self.algo = algo(params, self.models, shapes)
        check_instance(self.algo)
        self.feeder = feeder_of(algo)(self.algo, params, dataset=train_data)
        key = jax.random.PRNGKey(params.seed)
        self.loop = TrainingLoop(params, self.algo, self.feeder, None, self.algo.init_state(key), key,
                                 np.random.Generator(np.random.PCG64(params.seed)))
        self.heldout = heldout
        self.name = name or f"{algo.name}_{Path(params.dataset).stem if ':' not in params.dataset else params.dataset}"
        self.session = RunSession(self.name, run_root, self.loop, self.feeder, self.models, progress, dataset)
        if resume is not None:
            self.session.resume(resume, algo.name, params.dataset)

    def _describe(self) -> dict:
        classes = {r: self.model_classes.get(r) for r in self.algo_cls.roles}
        return describe(self.algo_cls.name, self.algo_cls.name, self.env, self.name, self.params, classes,
                        dataset_record(self.params.dataset, self.dataset))

    def save_checkpoint(self) -> Path:
        return self.session.save_checkpoint()

    def run(self) -> GenerativeSummary:
        p = self.params
        self.session.start(self._describe(), [HeldOutHook(self.heldout, p.seed)])
        self.loop.run()
        c = self.loop.counters
        last = self.loop.algo.evaluate(self.loop.state, {k: jax.numpy.asarray(v) for k, v in self.heldout.items()},
                                       jax.random.PRNGKey(p.seed + 1))
        return GenerativeSummary(float(last[0]), float(last[1]), list(c.eval_history), self.session.run_dir,
                                 c.grad_steps)

    @property
    def state(self):
        return self.loop.state

    def close(self) -> None:
        self.feeder.close()
