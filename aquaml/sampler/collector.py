"""Collects transitions from a vector of in-process environments with the current policy.

Episode ``k`` of env ``i`` is reset with a seed derived from ``(run seed, i, k)``, so a run
is reproducible and a checkpoint can restore every environment mid-episode exactly: the
checkpoint keeps each current episode's actions, and :meth:`Collector.load_state_dict`
replays them into fresh environments.
"""
from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from aquaml.env.driver import EnvDriver

TRAIN_STREAM, EVAL_STREAM = 0, 1
Field = tuple[tuple[int, ...], np.dtype]


def episode_seed(seed: int, stream: int, index: int, env: int = 0) -> int:
    """An independent 31-bit seed per (run seed, stream, env, episode)."""
    return int(np.random.SeedSequence([int(seed), stream, int(env), int(index)]).generate_state(1)[0] >> 1)


class _Slot:
    """One environment's episode bookkeeping."""

    def __init__(self, driver: EnvDriver, index: int, seed: int) -> None:
        self.driver, self.index, self.seed = driver, index, seed
        self.episode = 0
        self.obs: dict[str, np.ndarray] | None = None
        self.episode_return = 0.0
        self.episode_actions: list[dict[str, np.ndarray]] = []

    def start(self) -> None:
        self.obs = self.driver.reset(episode_seed(self.seed, TRAIN_STREAM, self.episode, self.index))
        self.episode_return = 0.0
        self.episode_actions = []


class Collector:
    """Steps ``drivers`` together with one batched ``act`` call per step.

    Args:
        drivers: the checked environments (all with the same observations).
        act: jitted ``act(actor_params, obs, key) -> (action_dict, extras, key)`` on a batch of
            all environments; ``extras`` (e.g. log-probabilities, values) are recorded too.
        actor_inputs: names of the observations the actor reads.
        action_field: ``(shape, dtype)`` of ``'action'`` per environment.
        random_action: ``(rng, n) -> n random actions`` for warm-up steps.
        seed: run seed.
        extra_fields: ``name -> (shape, dtype)`` of the extras ``act`` returns per environment.
    """

    def __init__(self, drivers: Sequence[EnvDriver], act: Callable, actor_inputs: Sequence[str],
                 action_field: Field, random_action: Callable, seed: int,
                 extra_fields: Mapping[str, Field] = {}) -> None:
        self.slots = [_Slot(d, i, int(seed)) for i, d in enumerate(drivers)]
        self.n_envs = len(self.slots)
        self.act = act
        self.actor_inputs = tuple(actor_inputs)
        self.action_field = (tuple(action_field[0]), np.dtype(action_field[1]))
        self.random_action = random_action
        self.extra_fields = dict(extra_fields)
        first = drivers[0]
        self.obs_shapes, self.obs_dtypes = dict(first.shapes), dict(first.dtypes)
        self.state_names = tuple(first.env._state_shapes)
        self.finished: list[tuple[float, int]] = []  # (return, length) since last drained

    def fields(self) -> dict[str, Field]:
        """Fields of one transition (one env, one step)."""
        out = {}
        for prefix in ("obs", "next_obs"):
            out.update({f"{prefix}/{n}": (s, self.obs_dtypes[n]) for n, s in self.obs_shapes.items()})
        out.update({"action": self.action_field, "reward": ((), np.dtype(np.float32)),
                    "terminated": ((), np.dtype(bool)), "truncated": ((), np.dtype(bool))})
        out.update({f"extras/{k}": v for k, v in self.extra_fields.items()})
        return out

    def _batched_obs(self) -> dict[str, np.ndarray]:
        if self.n_envs == 1:
            return {k: self.slots[0].obs[k] for k in self.actor_inputs}
        return {k: np.concatenate([s.obs[k] for s in self.slots]) for k in self.actor_inputs}

    def collect(self, n: int, actor_params, key, rng: np.random.Generator, random_steps: int = 0):
        """Run ``n`` steps of every env; the first ``random_steps`` take random actions.

        Returns the transitions as arrays with leading dimensions ``(n, n_envs)``, and the new key.
        """
        batch = {k: np.zeros((n, self.n_envs, *s), d) for k, (s, d) in self.fields().items()}
        extras: dict = {}
        for t in range(n):
            for slot in self.slots:
                if slot.obs is None:
                    slot.start()
            if t < random_steps and not self.state_names:
                action_dict: dict = {}
            else:  # a recurrent actor runs even during warm-up: its state outputs are observations
                action_dict, extras, key = self.act(actor_params, self._batched_obs(), key)
                action_dict = {k: np.asarray(v) for k, v in action_dict.items()}
            if t < random_steps:
                action_dict["action"] = self.random_action(rng, self.n_envs)
            for k, v in extras.items():
                batch[f"extras/{k}"][t] = np.asarray(v)
            for i, slot in enumerate(self.slots):
                own = {k: v[i:i + 1] for k, v in action_dict.items()}
                result = slot.driver.step(own)
                for name in self.obs_shapes:
                    batch[f"obs/{name}"][t, i] = slot.obs[name][0]
                    batch[f"next_obs/{name}"][t, i] = result.obs[name][0]
                batch["action"][t, i] = own["action"][0]
                batch["reward"][t, i] = result.reward
                batch["terminated"][t, i] = result.terminated
                batch["truncated"][t, i] = result.truncated
                slot.episode_return += result.reward
                slot.episode_actions.append(own)
                if result.terminated or result.truncated:
                    self.finished.append((slot.episode_return, slot.driver.t))
                    slot.episode += 1
                    slot.obs = None
                else:
                    slot.obs = result.obs
        return batch, key

    def drain_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done

    # -- checkpointing --------------------------------------------------------------
    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able counters and the arrays needed to restore every current episode."""
        meta = {"finished": self.finished, "envs": []}
        arrays = {}
        for slot in self.slots:
            steps = len(slot.episode_actions) if slot.obs is not None else 0
            meta["envs"].append({"episode": slot.episode, "episode_return": slot.episode_return,
                                 "episode_steps": steps})
            if steps:
                for k in ("action", *self.state_names):  # all the environment reads
                    arrays[f"env{slot.index}/actions/{k}"] = np.stack([a[k] for a in slot.episode_actions])
                arrays.update({f"env{slot.index}/obs/{k}": v for k, v in slot.obs.items()})
        return meta, arrays

    def load_state_dict(self, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore counters and replay each current episode's actions into a fresh env."""
        self.finished = [tuple(x) for x in meta["finished"]]
        if len(meta["envs"]) != self.n_envs:
            raise ValueError(f"checkpoint has {len(meta['envs'])} environments, this run {self.n_envs}")
        for slot, saved in zip(self.slots, meta["envs"]):
            slot.episode, slot.obs = int(saved["episode"]), None
            steps = int(saved["episode_steps"])
            if steps == 0:
                continue
            slot.start()
            prefix = f"env{slot.index}/actions/"
            names = [k[len(prefix):] for k in arrays if k.startswith(prefix)]
            for t in range(steps):
                action_dict = {k: arrays[prefix + k][t] for k in names}
                slot.obs = slot.driver.step(action_dict).obs
                slot.episode_actions.append(action_dict)
            slot.episode_return = float(saved["episode_return"])
            obs_prefix = f"env{slot.index}/obs/"
            expected = {k[len(obs_prefix):]: v for k, v in arrays.items() if k.startswith(obs_prefix)}
            if any(not np.array_equal(expected[k], slot.obs[k]) for k in expected):
                warnings.warn(
                    f"{slot.driver.name}: replaying the current episode from its seed did not reproduce the "
                    "checkpointed observation; the environment is not deterministic under seeding, so "
                    "this resume continues from the saved observation but is not exact",
                    stacklevel=2,
                )
                slot.obs = {k: np.array(v) for k, v in expected.items()}


def evaluate(driver: EnvDriver, act: Callable, actor_params, key, actor_inputs: Sequence[str],
             episodes: int, seed: int, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic returns and lengths of ``episodes`` seeded evaluation episodes.

    ``act(actor_params, obs, key, deterministic=True) -> (action_dict, extras, key)``.
    """
    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    for e in range(episodes):
        obs = driver.reset(episode_seed(seed, EVAL_STREAM, first_episode + e))
        while True:
            action_dict, _, _ = act(actor_params, {k: obs[k] for k in actor_inputs}, key, deterministic=True)
            result = driver.step({k: np.asarray(v) for k, v in action_dict.items()})
            returns[e] += result.reward
            obs = result.obs
            if result.terminated or result.truncated:
                lengths[e] = driver.t
                break
    return returns, lengths
