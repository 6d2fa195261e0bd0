"""What sits between the collector and an algorithm's compiled update.

Off-policy algorithms learn from a replay buffer; on-policy algorithms learn from the
rollout just collected. Both expose the same three calls to the training loop.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from aquaml.data import ReplayBuffer
from aquaml.tools.checkpoint import load_npz


class OffPolicyLearner:
    """Stores transitions in a replay buffer and trains on pre-sampled batches."""

    def __init__(self, algo, fields, params) -> None:
        self.algo, self.params = algo, params
        self.buffer = ReplayBuffer(params.buffer_size, fields)

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        """Vector steps of this epoch that take random actions (the ``mini_buffer_size`` warm-up)."""
        return math.ceil(max(0, self.params.mini_buffer_size - env_steps) / n_envs)

    def learn(self, state, batch, rng: np.random.Generator):
        """Returns ``(state, metrics, gradient steps taken)``."""
        p = self.params
        self.buffer.add({k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()})
        if len(self.buffer) < max(p.mini_buffer_size, p.batch_size):
            return state, {}, 0
        if getattr(p, "sequence_length", None):
            L = p.sequence_length
            flat = self.buffer.sample_sequences(rng, p.batch_size // L, L, stride=p.n_envs, n_batches=p.update_times)
        else:
            flat = self.buffer.sample(rng, p.batch_size, p.update_times)
        batches = self.algo.prepare_batches(flat)
        state, metrics = self.algo.update(state, batches)
        return state, metrics, p.update_times

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

    def __init__(self, algo, fields, params) -> None:
        self.algo, self.params = algo, params

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        return 0

    def learn(self, state, batch, rng: np.random.Generator):
        state, metrics = self.algo.update(state, self.algo.prepare_rollout(batch))
        return state, metrics, self.algo.grad_steps_per_update

    def checkpoint_files(self) -> dict:
        return {}

    def restore(self, path: Path) -> None:
        pass


LEARNERS = {"off_policy": OffPolicyLearner, "on_policy": OnPolicyLearner}
