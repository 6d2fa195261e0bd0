"""What sits between the collector and an algorithm's compiled update.

Off-policy algorithms learn from a replay buffer; on-policy algorithms learn from the
rollout just collected; offline algorithms learn from a dataset; adversarial imitation learns
from a replay buffer (or the rollout) and an expert dataset together. Both expose the same calls to the training loop: ``prepare`` (in the
loop's thread: stores data and draws batches with the run's generator) and ``update`` (the
compiled gradient steps, which may run in another thread while the next epoch is collected).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from aquaml.data import ReplayBuffer
from aquaml.data.windows import draw_batches, ends_of, last_steps
from aquaml.tools.checkpoint import load_npz


class OffPolicyLearner:
    """Stores transitions in a replay buffer and trains on pre-sampled batches."""

    can_overlap = True  # the next epoch may be collected with the previous policy

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        self.algo, self.params = algo, params
        self.buffer = ReplayBuffer(params.buffer_size, fields)

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        """Vector steps of this epoch that take random actions (the ``mini_buffer_size`` warm-up)."""
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

    def update(self, state, batches):
        """Returns ``(state, metrics, gradient steps taken)``."""
        state, metrics = self.algo.update(state, batches)
        return state, metrics, self.params.update_times

    def checkpoint_files(self) -> dict:
        return {"buffer": self.buffer.state_dict()} if self.params.save_buffer else {}

    def restore(self, path: Path) -> None:
        if (path / "buffer.npz").exists():
            self.buffer.load_state_dict(load_npz(path / "buffer.npz"))
        else:
            warnings.warn(f"{path} holds no replay buffer (save_buffer=False): training resumes with an empty "
                          "buffer, so the resumed run is not exact", stacklevel=3)


class OnPolicyLearner:
    """Hands each rollout to the algorithm's update (everything else lives in its state)."""

    can_overlap = False  # each rollout must come from the policy being updated

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        self.algo, self.params = algo, params

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        return 0

    def prepare(self, batch, rng: np.random.Generator):
        return self.algo.prepare_rollout(batch)

    def update(self, state, batches):
        state, metrics = self.algo.update(state, batches)
        return state, metrics, self.algo.grad_steps_per_update

    def checkpoint_files(self) -> dict:
        return {}

    def restore(self, path: Path) -> None:
        pass


class OfflineLearner:
    """Draws each epoch's batches from a fixed dataset (no environment steps).

    Batches are uniform over the dataset's transitions, or, with ``sequence_length``, windows
    of consecutive steps from uniform starts that never run past their episode's last step
    (``mask`` is 0 there). The actor's state inputs that the dataset does not hold start at
    zero.
    """

    can_overlap = False

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        self.algo, self.params, self.dataset = algo, params, dataset
        self.data = dataset.transitions()
        n = len(self.data["reward"])
        for name, shape in algo.models["actor"].state_outputs.items():
            if f"obs/{name}" not in self.data:  # no stored state: windows start from zeros
                for k in ("obs", "next_obs"):
                    self.data[f"{k}/{name}"] = np.zeros((n, *shape), np.float32)
        self.last_step = last_steps(ends_of(dataset.lengths))
        algo.observe_dataset(self.data)

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        return 0

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        return self.algo.prepare_batches(draw_batches(self.data, rng, p.update_times, p.batch_size,
                                                      getattr(p, "sequence_length", None), self.last_step))

    def update(self, state, batches):
        state, metrics = self.algo.update(state, batches)
        return state, metrics, self.params.update_times

    def checkpoint_files(self) -> dict:
        return {}  # the dataset is on disk; config.json records its digest

    def restore(self, path: Path) -> None:
        pass


class AdversarialLearner(OffPolicyLearner):
    """A replay buffer of the agent's transitions beside the expert's: every gradient step gets
    a batch of each (drawn with the run's generator, agent first), as ``(agent, expert)``; with
    ``sequence_length`` both are windows of consecutive steps."""

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        super().__init__(algo, fields, params)
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


class AdversarialRolloutLearner(OnPolicyLearner):
    """The rollout, the order of its steps in the discriminator's minibatches (one shuffle per
    ``discriminator_epochs``) and an expert batch per minibatch, as ``(rollout, index, expert)``."""

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        super().__init__(algo, fields, params)
        self.expert = dataset.transitions()

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        n = p.rollout_length * p.n_envs
        index = np.stack([rng.permutation(n) for _ in range(p.discriminator_epochs)]).reshape(-1, p.batch_size)
        return (super().prepare(batch, rng), index,
                self.algo.prepare_batches(draw_batches(self.expert, rng, len(index), p.batch_size)))


def _dagger_learner(*args, **kwargs):
    from aquaml.algorithm.dagger import DAggerLearner

    return DAggerLearner(*args, **kwargs)


#: ``kind -> learner class``; every learner takes ``(algo, fields, params, dataset, agent)``
LEARNERS = {"off_policy": OffPolicyLearner, "on_policy": OnPolicyLearner, "offline": OfflineLearner,
            "adversarial": AdversarialLearner, "adversarial_rollouts": AdversarialRolloutLearner,
            "dagger": _dagger_learner}
#: kinds that train on a dataset (``params.dataset``)
DATASET_KINDS = ("offline", "adversarial", "adversarial_rollouts")
