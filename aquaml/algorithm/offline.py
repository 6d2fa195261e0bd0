"""What every algorithm that learns from a dataset shares (BC, TD3+BC, IQL).

``kind = 'offline'``: the training loop steps no environment; an
:class:`~aquaml.starter.learners.OfflineLearner` draws ``update_times`` batches per epoch
from the dataset's transitions (or sequence windows) and hands them to ``update``.

Observations are standardised with the dataset's mean and standard deviation (TD3+BC's
recipe, ``std + 1e-3``): fixed numbers, computed once in :meth:`OfflineAlgorithm.observe_dataset`,
kept in the training state beside the algorithm's own state (so checkpoints and read-only
evaluation carry them) and applied inside the compiled ``act`` and ``update``.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import numpy as np

from aquaml.data import normalizer
from aquaml.data.batch import training_batch
from aquaml.algorithm.feeders import DatasetFeeder

STD_FLOOR = 1e-3  # added to each standard deviation: constant features stay finite


class NormalizedState(NamedTuple):
    inner: Any  #: the algorithm's own training state
    obs_stats: dict  #: ``{'mean': {name: ...}, 'var': {name: ...}, 'count': n}`` (empty dicts: no scaling)


class OfflineAlgorithm:
    """Mixin placed first in the bases: wraps ``init_state``, ``act``, ``update`` and the
    parameter views so the wrapped algorithm sees standardised observations.

    Subclasses set ``self.models`` and implement the usual members for their own state.
    """

    feeder: ClassVar[type] = DatasetFeeder
    extra_fields: ClassVar[dict] = {}
    prepare_batches = staticmethod(training_batch)

    def norm_shapes(self) -> dict[str, tuple[int, ...]]:
        """The observations the models read (not actions, not the actor's recurrent state)."""
        states = set(self.models["actor"].state_outputs)
        return {k: tuple(s) for spec in self.models.values() for k, s in spec.input_shapes.items()
                if k != "action" and k not in states}

    def observe_dataset(self, transitions: Mapping[str, np.ndarray]) -> None:
        """Compute the fixed observation statistics from the training transitions."""
        if not self.params.normalize_obs:
            self._stats = {"mean": {}, "var": {}, "count": np.float32(len(transitions["reward"]))}
            return
        mean, var = {}, {}
        for k in self.norm_shapes():
            x = np.asarray(transitions[f"obs/{k}"], np.float64)
            mean[k] = x.mean(axis=0).astype(np.float32)
            var[k] = ((x.std(axis=0) + STD_FLOOR) ** 2).astype(np.float32)
        self._stats = {"mean": mean, "var": var, "count": np.float32(len(transitions["reward"]))}

    def _initial_stats(self) -> dict:
        stats = getattr(self, "_stats", None)
        if stats is None:  # a template (read-only evaluation): the checkpoint supplies the numbers
            shapes = self.norm_shapes() if self.params.normalize_obs else {}
            stats = {"mean": {k: np.zeros(s, np.float32) for k, s in shapes.items()},
                     "var": {k: np.ones(s, np.float32) for k, s in shapes.items()}, "count": np.float32(0)}
        return jax.tree_util.tree_map(jax.numpy.asarray, stats)

    # -- the wrapped members -------------------------------------------------------------
    def init_state(self, key: jax.Array) -> NormalizedState:
        return NormalizedState(super().init_state(key), self._initial_stats())

    def actor_params(self, state: NormalizedState):
        return super().actor_params(state.inner), state.obs_stats

    def model_params(self, state: NormalizedState) -> dict:
        return super().model_params(state.inner)

    def _act(self, actor_params, obs, key, deterministic: bool = False):
        params, stats = actor_params
        return super()._act(params, normalizer.normalize(stats, obs), key, deterministic)

    def _update_many(self, state: NormalizedState, batches):
        stats = state.obs_stats
        batches = dict(batches)
        for k in ("obs", "next_obs"):
            if k in batches:
                batches[k] = normalizer.normalize(stats, batches[k])
        inner, metrics = super()._update_many(state.inner, batches)
        return NormalizedState(inner, stats), metrics
