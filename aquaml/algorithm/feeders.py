"""Feeders: what sits between the data and an algorithm's compiled update.

An algorithm names its feeder (``feeder = ReplayFeeder``, or ``kind = 'off_policy'`` for a
built-in one, see :data:`FEEDERS`). The feeder declares what the run must give it (environment
steps, a dataset, an expert) and which members of the algorithm it calls, so that a run is
checked before anything is built (:func:`aquaml.algorithm.interface.check_algorithm`).

The training loop calls two methods of a feeder: ``prepare`` (in the loop's thread: stores
data and draws batches with the run's generator) and ``update`` (the compiled gradient steps,
which may run in another thread while the next epoch is collected). Off-policy algorithms
learn from a replay buffer, on-policy ones from the rollout just collected, offline ones from a
dataset, adversarial imitation from the agent's data and an expert dataset together.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from aquaml.data import ReplayBuffer
from aquaml.data.windows import draw_batches, ends_of, last_steps
from aquaml.tools.checkpoint import load_npz

#: ``(shape per environment, dtype)`` of each recorded field, as the collector records them
Fields = Mapping[str, tuple[tuple[int, ...], np.dtype]]


class Feeder:
    """Base of every feeder: hands whatever ``prepare`` returns to the algorithm's ``update``.

    Subclasses override ``prepare`` and what they need of the rest; the defaults take no random
    warm-up steps, save nothing besides the training state, and hold nothing to close.
    """

    #: the next epoch may be collected with the previous policy while this one's update runs
    can_overlap: ClassVar[bool] = False
    #: the run steps environments (False: batches come from a dataset alone)
    steps_envs: ClassVar[bool] = True
    #: there is an environment at all (False: generative models of dataset fields, no evaluation)
    needs_env: ClassVar[bool] = True
    #: ``'required'``, ``'optional'`` or ``''``: whether the run's ``dataset`` parameter is read
    uses_dataset: ClassVar[str] = ""
    #: the run's ``expert`` parameter names a trained run whose policy labels data (DAgger)
    uses_expert: ClassVar[bool] = False
    #: members of the algorithm class this feeder calls (checked before anything is built)
    requires: ClassVar[tuple[str, ...]] = ()
    #: members set on the algorithm instance by its ``__init__`` that this feeder reads
    requires_instance: ClassVar[tuple[str, ...]] = ()
    #: fields of the run's parameters this feeder reads (checked before anything is built)
    reads_parameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, algo, params, *, fields: Fields | None = None, dataset=None, expert=None) -> None:
        self.algo, self.params = algo, params

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        """Vector steps of this epoch that take random actions."""
        return 0

    def prepare(self, batch, rng: np.random.Generator):
        """What ``update`` gets for the epoch's data ``batch`` (None: no update this epoch)."""
        raise NotImplementedError

    def grad_steps(self) -> int:
        """Gradient steps one ``update`` takes."""
        return self.params.update_times

    def update(self, state, batches) -> tuple[Any, dict, int]:
        """Returns ``(state, metrics, gradient steps taken)``."""
        state, metrics = self.algo.update(state, batches)
        return state, metrics, self.grad_steps()

    def checkpoint_files(self) -> dict:
        """``{name: arrays}`` written beside the training state in each checkpoint."""
        return {}

    def restore(self, path: Path) -> None:
        """Read back what ``checkpoint_files`` wrote, from checkpoint folder ``path``."""

    def close(self) -> None:
        """Release what the feeder holds (processes, environments)."""


class ReplayFeeder(Feeder):
    """Stores transitions in a replay buffer and trains on pre-sampled batches (off-policy)."""

    can_overlap = True
    requires = ("prepare_batches",)
    reads_parameters = ("buffer_size", "mini_buffer_size", "batch_size", "update_times", "save_buffer", "n_envs")

    def __init__(self, algo, params, *, fields: Fields | None = None, dataset=None, expert=None) -> None:
        super().__init__(algo, params)
        self.buffer = ReplayBuffer(params.buffer_size, fields)

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        """The ``mini_buffer_size`` warm-up."""
        return math.ceil(max(0, self.params.mini_buffer_size - env_steps) / n_envs)

    def prepare(self, batch, rng: np.random.Generator):
        """Store the epoch's transitions; the batches of its gradient steps, or None before learning starts."""
        p = self.params
        self.buffer.add({k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()})
        if len(self.buffer) < max(p.mini_buffer_size, p.batch_size):
            return None
        if getattr(p, "sequence_length", None):
            L = p.sequence_length
            flat = self.buffer.sample_sequences(rng, p.batch_size // L, L, stride=p.n_envs, n_batches=p.update_times)
        else:
            flat = self.buffer.sample(rng, p.batch_size, p.update_times)
        return self.algo.prepare_batches(flat)

    def checkpoint_files(self) -> dict:
        return {"buffer": self.buffer.state_dict()} if self.params.save_buffer else {}

    def restore(self, path: Path) -> None:
        if (path / "buffer.npz").exists():
            self.buffer.load_state_dict(load_npz(path / "buffer.npz"))
        else:
            warnings.warn(f"{path} holds no replay buffer (save_buffer=False): training resumes with an empty "
                          "buffer, so the resumed run is not exact", stacklevel=3)


class RolloutFeeder(Feeder):
    """Hands each rollout to the algorithm's update (everything else lives in its state)."""

    requires = ("prepare_rollout",)
    requires_instance = ("grad_steps_per_update",)

    def prepare(self, batch, rng: np.random.Generator):
        return self.algo.prepare_rollout(batch)

    def grad_steps(self) -> int:
        return self.algo.grad_steps_per_update


class DatasetFeeder(Feeder):
    """Draws each epoch's batches from a fixed dataset (no environment steps).

    Batches are uniform over the dataset's transitions, or, with ``sequence_length``, windows
    of consecutive steps from uniform starts that never run past their episode's last step
    (``mask`` is 0 there). The actor's state inputs that the dataset does not hold start at
    zero.
    """

    steps_envs = False
    uses_dataset = "required"
    requires = ("prepare_batches", "observe_dataset")
    requires_instance = ("models",)
    reads_parameters = ("dataset", "max_episodes", "batch_size", "update_times")

    def __init__(self, algo, params, *, fields: Fields | None = None, dataset=None, expert=None) -> None:
        super().__init__(algo, params)
        self.data = dataset.transitions()
        n = len(self.data["reward"])
        for name, shape in algo.models["actor"].state_outputs.items():
            if f"obs/{name}" not in self.data:  # no stored state: windows start from zeros
                for k in ("obs", "next_obs"):
                    self.data[f"{k}/{name}"] = np.zeros((n, *shape), np.float32)
        self.last_step = last_steps(ends_of(dataset.lengths))
        algo.observe_dataset(self.data)

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        return self.algo.prepare_batches(draw_batches(self.data, rng, p.update_times, p.batch_size,
                                                      getattr(p, "sequence_length", None), self.last_step))


class AdversarialReplayFeeder(ReplayFeeder):
    """A replay buffer of the agent's transitions beside the expert's: every gradient step gets
    a batch of each (drawn with the run's generator, agent first), as ``(agent, expert)``; with
    ``sequence_length`` both are windows of consecutive steps."""

    uses_dataset = "required"
    reads_parameters = (*ReplayFeeder.reads_parameters, "dataset", "max_episodes", "sequence_length")

    def __init__(self, algo, params, *, fields: Fields | None = None, dataset=None, expert=None) -> None:
        super().__init__(algo, params, fields=fields)
        self.expert = dataset.transitions()
        # Expert windows run across episode ends as the buffer's do (the flags reset a recurrent
        # discriminator there), so every expert step is scored as often as every agent step;
        # each episode's last step is flagged so that a reset happens whatever the data says.
        ends = ends_of(dataset.lengths)
        self.expert["truncated"] = np.maximum(self.expert["truncated"], ends & (self.expert["terminated"] == 0))
        self.last_step = np.full(len(ends), len(ends) - 1)  # only the data's end stops a window

    def prepare(self, batch, rng: np.random.Generator):
        agent = super().prepare(batch, rng)
        if agent is None:
            return None
        p = self.params
        return agent, self.algo.prepare_batches(draw_batches(self.expert, rng, p.update_times, p.batch_size,
                                                             p.sequence_length, self.last_step))


class AdversarialRolloutFeeder(RolloutFeeder):
    """The rollout, the order of its steps in the discriminator's minibatches (one shuffle per
    ``discriminator_epochs``) and an expert batch per minibatch, as ``(rollout, index, expert)``."""

    uses_dataset = "required"
    requires = ("prepare_rollout", "prepare_batches")
    reads_parameters = ("dataset", "max_episodes", "rollout_length", "n_envs", "discriminator_epochs", "batch_size")

    def __init__(self, algo, params, *, fields: Fields | None = None, dataset=None, expert=None) -> None:
        super().__init__(algo, params)
        self.expert = dataset.transitions()

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        n = p.rollout_length * p.n_envs
        index = np.stack([rng.permutation(n) for _ in range(p.discriminator_epochs)]).reshape(-1, p.batch_size)
        return (super().prepare(batch, rng), index,
                self.algo.prepare_batches(draw_batches(self.expert, rng, len(index), p.batch_size)))


#: the built-in feeders an algorithm may name by ``kind`` instead of setting ``feeder``
FEEDERS: dict[str, type[Feeder]] = {"off_policy": ReplayFeeder, "on_policy": RolloutFeeder, "offline": DatasetFeeder,
                                    "adversarial": AdversarialReplayFeeder,
                                    "adversarial_rollouts": AdversarialRolloutFeeder}


def feeder_of(algo: type) -> type[Feeder]:
    """The feeder class an algorithm class declares: ``feeder``, or a built-in one by ``kind``,
    whichever the most derived class that sets one of them sets (``class X(SAC): kind = 'adversarial'``
    gets the adversarial feeder, not SAC's)."""
    owner = next((c for c in algo.__mro__ if "feeder" in vars(c) or "kind" in vars(c)), None)
    if owner is not None and "feeder" in vars(owner):
        feeder = vars(owner)["feeder"]
        if not (isinstance(feeder, type) and issubclass(feeder, Feeder)):
            raise TypeError(f"{algo.__name__}.feeder = {feeder!r}; it must be a subclass of "
                            "aquaml.algorithm.feeders.Feeder")
        return feeder
    kind = vars(owner)["kind"] if owner is not None else None
    if kind not in FEEDERS:
        raise TypeError(f"{algo.__name__}.kind = {kind!r}; use one of {', '.join(sorted(FEEDERS))} "
                        "(or set feeder = a Feeder subclass)")
    return FEEDERS[kind]
