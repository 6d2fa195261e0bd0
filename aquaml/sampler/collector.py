"""Collects transitions from one environment with the current policy.

Episodes are seeded from ``(run seed, episode index)``, so a run is reproducible and a
checkpoint can restore the environment mid-episode exactly: the checkpoint keeps the
current episode's actions, and :meth:`Collector.load_state_dict` replays them.
"""
from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from aquaml.env.driver import EnvDriver

TRAIN_STREAM, EVAL_STREAM = 0, 1


def episode_seed(seed: int, stream: int, index: int) -> int:
    """An independent 31-bit seed per (run seed, stream, episode)."""
    return int(np.random.SeedSequence([int(seed), stream, int(index)]).generate_state(1)[0] >> 1)


class Collector:
    """Steps ``driver`` with ``act`` and returns flat transition batches for a replay buffer.

    Args:
        driver: the checked environment.
        act: jitted ``act(actor_params, obs, key, deterministic) -> (outputs, key)``.
        actor_inputs: names of the observations the actor reads.
        action_shape: shape of ``'action'`` (without batch axis).
        seed: run seed; episode ``k`` is reset with ``episode_seed(seed, TRAIN_STREAM, k)``.
    """

    def __init__(self, driver: EnvDriver, act: Callable, actor_inputs: Sequence[str],
                 action_shape: tuple[int, ...], seed: int) -> None:
        self.driver = driver
        self.act = act
        self.actor_inputs = tuple(actor_inputs)
        self.action_shape = tuple(action_shape)
        self.seed = int(seed)
        self.obs_shapes = dict(driver.shapes)
        self.recurrent = bool(driver.env._state_shapes)
        self.episode = 0
        self.obs: dict[str, np.ndarray] | None = None
        self.episode_return = 0.0
        self.episode_actions: list[dict[str, np.ndarray]] = []
        self.finished: list[tuple[float, int]] = []  # (return, length) since last drained

    def fields(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Replay-buffer fields of one transition."""
        f32 = np.dtype(np.float32)
        out = {}
        for prefix in ("obs", "next_obs"):
            out.update({f"{prefix}/{n}": (s, self.driver.dtypes[n]) for n, s in self.obs_shapes.items()})
        out.update({"action": (self.action_shape, f32), "reward": ((), f32),
                    "terminated": ((), np.dtype(bool)), "truncated": ((), np.dtype(bool))})
        return out

    def _start_episode(self) -> None:
        self.obs = self.driver.reset(episode_seed(self.seed, TRAIN_STREAM, self.episode))
        self.episode_return = 0.0
        self.episode_actions = []

    def collect(self, n: int, actor_params, key, rng: np.random.Generator, random_steps: int = 0):
        """Run ``n`` steps; the first ``random_steps`` use uniform random actions in [-1, 1].

        Returns the transitions as flat arrays with leading dimension ``n``, and the new key.
        """
        batch = {k: np.zeros((n, *s), d) for k, (s, d) in self.fields().items()}
        for i in range(n):
            if self.obs is None:
                self._start_episode()
            obs = self.obs
            if i < random_steps and not self.recurrent:
                action_dict = {}
            else:  # a recurrent actor runs even during warm-up: its state outputs are observations
                outputs, key = self.act(actor_params, {k: obs[k] for k in self.actor_inputs}, key)
                action_dict = {k: np.asarray(v) for k, v in outputs.items()}
            if i < random_steps:
                action_dict["action"] = rng.uniform(-1.0, 1.0, (1, *self.action_shape)).astype(np.float32)
            result = self.driver.step(action_dict)
            for name in self.obs_shapes:
                batch[f"obs/{name}"][i] = obs[name][0]
                batch[f"next_obs/{name}"][i] = result.obs[name][0]
            batch["action"][i] = action_dict["action"][0]
            batch["reward"][i] = result.reward
            batch["terminated"][i] = result.terminated
            batch["truncated"][i] = result.truncated
            self.episode_return += result.reward
            self.episode_actions.append(action_dict)
            if result.terminated or result.truncated:
                self.finished.append((self.episode_return, self.driver.t))
                self.episode += 1
                self.obs = None
            else:
                self.obs = result.obs
        return batch, key

    def drain_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done

    # -- checkpointing --------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able counters and the arrays needed to restore the current episode."""
        meta = {"episode": self.episode, "episode_return": self.episode_return,
                "episode_steps": len(self.episode_actions) if self.obs is not None else 0,
                "finished": self.finished}
        arrays = {}
        if self.obs is not None:
            names = ("action", *self.driver.env._state_shapes)  # all the environment reads
            arrays.update({f"actions/{k}": np.stack([a[k] for a in self.episode_actions]) for k in names})
            arrays.update({f"obs/{k}": v for k, v in self.obs.items()})
        return meta, arrays

    def load_state_dict(self, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore counters and replay the current episode's actions into a fresh env."""
        self.episode = int(meta["episode"])
        self.finished = [tuple(x) for x in meta["finished"]]
        self.obs = None
        steps = int(meta["episode_steps"])
        if steps == 0:
            return
        self._start_episode()
        names = [k.split("/", 1)[1] for k in arrays if k.startswith("actions/")]
        for t in range(steps):
            action_dict = {k: arrays[f"actions/{k}"][t] for k in names}
            self.obs = self.driver.step(action_dict).obs
            self.episode_actions.append(action_dict)
        self.episode_return = float(meta["episode_return"])
        saved = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("obs/")}
        if any(not np.array_equal(saved[k], self.obs[k]) for k in saved):
            warnings.warn(
                f"{self.driver.name}: replaying the current episode from its seed did not reproduce the "
                "checkpointed observation; the environment is not deterministic under seeding, so "
                "this resume continues from the saved observation but is not exact",
                stacklevel=2,
            )
            self.obs = {k: np.array(v) for k, v in saved.items()}


def evaluate(driver: EnvDriver, act: Callable, actor_params, key, actor_inputs: Sequence[str],
             episodes: int, seed: int, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic returns and lengths of ``episodes`` seeded evaluation episodes."""
    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    for e in range(episodes):
        obs = driver.reset(episode_seed(seed, EVAL_STREAM, first_episode + e))
        while True:
            outputs, _ = act(actor_params, {k: obs[k] for k in actor_inputs}, key, deterministic=True)
            result = driver.step({k: np.asarray(v) for k, v in outputs.items()})
            returns[e] += result.reward
            obs = result.obs
            if result.terminated or result.truncated:
                lengths[e] = driver.t
                break
    return returns, lengths
