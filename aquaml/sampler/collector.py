"""Collects transitions from a vector of environments with the current policy.

The environments run in a pool (:mod:`aquaml.parallel.pool`): in this process by default,
or in worker processes over shared memory. Either way the same block code steps them, so
a seed gives the same trajectories with and without workers.

Episode ``k`` of env ``i`` is reset with a seed derived from ``(run seed, i, k)``, so a run
is reproducible and a checkpoint can restore every environment mid-episode exactly: the
checkpoint keeps each current episode's actions, and :meth:`Collector.load_state_dict`
replays them into fresh environments.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from aquaml.env.driver import EnvDriver
from aquaml.parallel.block import DriverStepper, table_fields
from aquaml.parallel.mpi import MPIPool
from aquaml.parallel.pool import make_pool

TRAIN_STREAM, EVAL_STREAM = 0, 1
Field = tuple[tuple[int, ...], np.dtype]


def episode_seed(seed: int, stream: int, index: int, env: int = 0) -> int:
    """An independent 31-bit seed per (run seed, stream, env, episode)."""
    return int(np.random.SeedSequence([int(seed), stream, int(env), int(index)]).generate_state(1)[0] >> 1)


def driver_steppers(env_fns: Sequence[Callable], episode_length: int | None,
                    state_outputs: Mapping[str, tuple[int, ...]]) -> list[DriverStepper]:
    """Checked drivers around the environments ``env_fns`` build (runs in workers too)."""
    steppers = []
    for fn in env_fns:
        env = fn()
        env.set_state_outputs(state_outputs)
        steppers.append(DriverStepper(EnvDriver(env, episode_length)))
    return steppers


class Collector:
    """Steps ``n_envs`` environments together with one batched ``act`` call per step.

    Args:
        env_fns: one factory per environment, each returning an ``RLBaseEnv``.
        episode_length: time limit per episode (reaching it is a truncation).
        obs_fields: ``name -> (shape, dtype)`` of every observation, actor state outputs included.
        state_outputs: ``name -> shape`` of the actor's state outputs.
        act: jitted ``act(actor_params, obs, key) -> (action_dict, extras, key)`` on a batch of
            all environments; ``extras`` (e.g. log-probabilities, values) are recorded too.
        actor_inputs: names of the observations the actor reads.
        action_field: ``(shape, dtype)`` of ``'action'`` per environment.
        random_action: ``(rng, n) -> n random actions`` for warm-up steps.
        seed: run seed.
        extra_fields: ``name -> (shape, dtype)`` of the extras ``act`` returns per environment.
        n_workers: worker processes (0: step the environments in this process).
        overlap: with two or more workers, act for one half of the envs while the other
            half steps (double buffering).
        worker_options: passed to :class:`aquaml.parallel.WorkerPool` (e.g. ``spin_s``).
    """

    def __init__(self, env_fns: Sequence[Callable], episode_length: int | None, obs_fields: Mapping[str, Field],
                 state_outputs: Mapping[str, tuple[int, ...]], act: Callable, actor_inputs: Sequence[str],
                 action_field: Field, random_action: Callable, seed: int,
                 extra_fields: Mapping[str, Field] = {}, n_workers: int = 0, overlap: bool = False,
                 mpi_comm=None, mpi_transport: str = "auto", **worker_options) -> None:
        self.n_envs = len(env_fns)
        self.act = act
        self.actor_inputs = tuple(actor_inputs)
        self.action_field = (tuple(action_field[0]), np.dtype(action_field[1]))
        self.random_action = random_action
        self.seed = int(seed)
        self.extra_fields = dict(extra_fields)
        self.obs_shapes = {k: tuple(s) for k, (s, _) in obs_fields.items()}
        self.obs_dtypes = {k: np.dtype(d) for k, (_, d) in obs_fields.items()}
        self.state_names = tuple(state_outputs)
        # what the environment reads: the action and the actor's state outputs
        self.env_inputs = {"action": self.action_field,
                           **{k: (tuple(s), np.dtype(np.float32)) for k, s in state_outputs.items()}}
        steppers = functools.partial(driver_steppers, episode_length=episode_length,
                                     state_outputs=dict(state_outputs))
        fields = table_fields(self.n_envs, obs_fields, self.env_inputs)
        if mpi_comm is not None:
            self.pool = MPIPool(mpi_comm, self.n_envs, fields, steppers, transport=mpi_transport)
        else:
            self.pool = make_pool(env_fns, fields, steppers, n_workers=n_workers, **worker_options)
        self.groups = [_Group(slice(0, self.n_envs), None)]
        n_workers = len(getattr(self.pool, "workers", ()))
        if overlap and n_workers >= 2:
            half = n_workers // 2
            middle = self.pool.workers[half].lo
            self.groups = [_Group(slice(0, middle), list(range(half))),
                           _Group(slice(middle, self.n_envs), list(range(half, n_workers)))]
        a = self.pool.arrays
        self._obs = {k: a[f"obs/{k}"] for k in self.obs_shapes}
        self._final = {k: a[f"final_obs/{k}"] for k in self.obs_shapes}
        self._inputs = {k: a[f"act/{k}"] for k in self.env_inputs}
        self.episode = np.zeros(self.n_envs, np.int64)
        self.episode_return = np.zeros(self.n_envs)
        self.started = False
        # Actions of every current episode (for exact resume): one row per vector step since
        # the oldest current episode began; env i's episode began at vector step `_start[i]`.
        self._history: list[dict[str, np.ndarray]] = []
        self._history_t0 = self._t = 0
        self._start = np.zeros(self.n_envs, np.int64)
        self.finished: list[tuple[float, int]] = []  # (return, length) since last drained
        self._fields = self._transition_fields()

    def fields(self) -> dict[str, Field]:
        """Fields of one transition (one env, one step)."""
        return dict(self._fields)

    def _transition_fields(self) -> dict[str, Field]:
        out = {}
        for prefix in ("obs", "next_obs"):
            out.update({f"{prefix}/{n}": (s, self.obs_dtypes[n]) for n, s in self.obs_shapes.items()})
        out.update({"action": self.action_field, "reward": ((), np.dtype(np.float32)),
                    "terminated": ((), np.dtype(bool)), "truncated": ((), np.dtype(bool))})
        out.update({f"extras/{k}": v for k, v in self.extra_fields.items()})
        return out

    def _seed_for(self, env: int, episode: int) -> int:
        return episode_seed(self.seed, TRAIN_STREAM, episode, env)

    def _begin(self, envs: Sequence[int]) -> None:
        """Reset ``envs`` to their current episode, and queue the next episode's seed."""
        a = self.pool.arrays
        a["reset_mask"][:] = False
        for i in envs:
            a["reset_mask"][i] = True
            a["reset_seed"][i] = self._seed_for(i, self.episode[i])
        self.pool.run("reset")
        for i in range(self.n_envs):
            a["reset_seed"][i] = self._seed_for(i, self.episode[i] + 1)
        self.started = True

    def collect(self, n: int, actor_params, key, rng: np.random.Generator, random_steps: int = 0):
        """Run ``n`` steps of every env; the first ``random_steps`` take random actions.

        Returns the transitions as arrays with leading dimensions ``(n, n_envs)``, and the new key.
        With two groups of envs (``overlap``), the policy acts for one group while the other
        group's workers step.
        """
        if not self.started:
            self._begin(range(self.n_envs))
        batch = {k: np.zeros((n, self.n_envs, *s), d) for k, (s, d) in self._fields.items()}
        run = _Rollout(self, batch, actor_params, key, rng, random_steps)
        first, *rest = self.groups
        run.launch(first, 0)
        for t in range(n):
            for group in rest:
                run.launch(group, t)
            run.land(first, t)
            if t + 1 < n:
                run.launch(first, t + 1)
            for group in rest:
                run.land(group, t)
        self._t += n
        return batch, run.key

    def _finish(self, done: np.ndarray, t: int, next_out: Mapping[str, np.ndarray]) -> None:
        """Bookkeeping for envs whose episode ended at step ``t`` of this rollout (already reset)."""
        a = self.pool.arrays
        for i in done:
            for k, v in self._final.items():
                next_out[k][t, i] = v[i]
            self.finished.append((float(self.episode_return[i]), int(a["episode_step"][i])))
            self.episode_return[i] = 0.0
            self.episode[i] += 1
            a["reset_seed"][i] = self._seed_for(i, self.episode[i] + 1)
            self._start[i] = self._t + t + 1
        drop = int(self._start.min()) - self._history_t0
        if drop > 0:
            del self._history[:drop]
            self._history_t0 += drop

    def drain_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done

    def close(self) -> None:
        self.pool.close()

    # -- checkpointing --------------------------------------------------------------
    def _episode_actions(self, i: int) -> dict[str, np.ndarray]:
        rows = self._history[int(self._start[i]) - self._history_t0:]
        return {k: np.stack([r[k][i] for r in rows]) for k in self._inputs} if rows else {}

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able counters and the arrays needed to restore every current episode."""
        meta = {"finished": self.finished, "envs": []}
        arrays = {}
        for i in range(self.n_envs):
            steps = int(self._t - self._start[i]) if self.started else 0
            meta["envs"].append({"episode": int(self.episode[i]), "episode_return": float(self.episode_return[i]),
                                 "episode_steps": steps, "started": self.started})
            if steps:
                arrays.update({f"env{i}/actions/{k}": v for k, v in self._episode_actions(i).items()})
                arrays.update({f"env{i}/obs/{k}": v[i].copy() for k, v in self._obs.items()})
        return meta, arrays

    def load_state_dict(self, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore counters and replay each current episode's actions into a fresh env."""
        self.finished = [tuple(x) for x in meta["finished"]]
        if len(meta["envs"]) != self.n_envs:
            raise ValueError(f"checkpoint has {len(meta['envs'])} environments, this run {self.n_envs}")
        self.episode[:] = [int(s["episode"]) for s in meta["envs"]]
        self.episode_return[:] = [float(s["episode_return"]) for s in meta["envs"]]
        if not any(s.get("started", s["episode_steps"] > 0) for s in meta["envs"]):
            return  # saved before the first step: collect() starts every env
        # envs mid-episode are reset by their replay below; the others start their episode here
        self._begin([i for i, saved in enumerate(meta["envs"]) if int(saved["episode_steps"]) == 0])
        self._history, self._history_t0 = [], 0
        self._t = max(int(s["episode_steps"]) for s in meta["envs"])
        for i, saved in enumerate(meta["envs"]):
            steps = int(saved["episode_steps"])
            self._start[i] = self._t - steps
            if steps == 0:
                continue
            prefix = f"env{i}/actions/"
            actions = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            obs = self.pool.call(i, "replay", i, self._seed_for(i, self.episode[i]), actions)
            expected = {k: arrays[f"env{i}/obs/{k}"] for k in self._obs if f"env{i}/obs/{k}" in arrays}
            if any(not np.array_equal(expected[k], obs[k]) for k in expected):
                warnings.warn(
                    f"env {i}: replaying the current episode from its seed did not reproduce the "
                    "checkpointed observation; the environment is not deterministic under seeding, so "
                    "this resume continues from the saved observation but is not exact",
                    stacklevel=2,
                )
                for k, v in expected.items():
                    self._obs[k][i] = v
        # the history again holds every current episode's actions, aligned at the end
        for t in range(self._t):
            row = {k: np.zeros_like(v) for k, v in self._inputs.items()}
            for i, saved in enumerate(meta["envs"]):
                offset = t - int(self._start[i])
                if offset >= 0:
                    for k in row:
                        row[k][i] = arrays[f"env{i}/actions/{k}"][offset]
            self._history.append(row)


class _Group(NamedTuple):
    envs: slice
    workers: list[int] | None  # None: every worker (or the local pool)


class _Rollout:
    """One :meth:`Collector.collect` call: acts for, steps and records groups of envs."""

    def __init__(self, c: Collector, batch: dict, actor_params, key, rng, random_steps: int) -> None:
        self.c, self.batch, self.params, self.key, self.rng = c, batch, actor_params, key, rng
        self.random_steps = random_steps
        self.obs_out = {k: batch[f"obs/{k}"] for k in c._obs}
        self.next_out = {k: batch[f"next_obs/{k}"] for k in c._obs}
        self.t0 = c._t

    def launch(self, g: _Group, t: int) -> None:
        """Record the observations of ``g``'s envs at step ``t``, act, and start their step."""
        c, envs = self.c, g.envs
        for k, v in c._obs.items():
            self.obs_out[k][t, envs] = v[envs]
        extras: dict = {}
        if t < self.random_steps and not c.state_names:
            action_dict: dict = {}
        else:  # a recurrent actor runs even during warm-up: its state outputs are observations
            obs = {k: c._obs[k][envs] for k in c.actor_inputs}
            action_dict, extras, self.key = c.act(self.params, obs, self.key)
            action_dict = {k: np.asarray(action_dict[k]) for k in c._inputs}
        if t < self.random_steps:
            action_dict["action"] = c.random_action(self.rng, envs.stop - envs.start)
        width = envs.stop - envs.start
        for k, v in action_dict.items():  # assignment below would broadcast a wrong shape silently
            if v.shape != (width, *c._inputs[k].shape[1:]):
                raise ValueError(f"the policy returned {k!r} of shape {v.shape} for {width} envs; "
                                 f"expected {(width, *c._inputs[k].shape[1:])}")
        for k, v in extras.items():
            v = np.asarray(v)
            if v.shape != (width, *c.extra_fields[k][0]):
                raise ValueError(f"the policy returned extra {k!r} of shape {v.shape} for {width} envs; "
                                 f"expected {(width, *c.extra_fields[k][0])}")
            self.batch[f"extras/{k}"][t, envs] = v
        index = self.t0 + t - c._history_t0
        if index == len(c._history):  # the first group to act at this step opens its row
            c._history.append({k: np.zeros_like(v) for k, v in c._inputs.items()})
        row = c._history[index]
        for k, v in c._inputs.items():
            v[envs] = action_dict[k]
            row[k][envs] = action_dict[k]
        c.pool.send("step", g.workers)

    def land(self, g: _Group, t: int) -> None:
        """Wait for ``g``'s step ``t`` and record its results."""
        c, envs, b, a = self.c, g.envs, self.batch, self.c.pool.arrays
        c.pool.wait(g.workers)
        for k, v in c._obs.items():
            self.next_out[k][t, envs] = v[envs]
        b["action"][t, envs] = c._inputs["action"][envs]
        b["reward"][t, envs] = a["reward"][envs]
        b["terminated"][t, envs] = a["terminated"][envs]
        b["truncated"][t, envs] = a["truncated"][envs]
        c.episode_return[envs] += a["reward"][envs]
        done = np.flatnonzero(a["terminated"][envs] | a["truncated"][envs])
        if len(done):
            c._finish(done + envs.start, t, self.next_out)


def run_episodes(driver: EnvDriver, act: Callable, actor_params, key, actor_inputs: Sequence[str], episodes: int,
                 seed: int, first_episode: int = 0, deterministic: bool = True, record: bool = False):
    """Seeded episodes ``first_episode, first_episode + 1, ...`` (the evaluation stream).

    Returns ``(returns, lengths, records)``; with ``record`` each record is an episode dict
    as :meth:`aquaml.data.Dataset.episode` gives it: every named observation (the actor's
    state outputs included, ``T + 1`` rows ending with the true final observation), the
    actions, rewards, terminations and truncations. Stochastic episodes draw from ``key``
    folded with the episode number, so they repeat exactly.
    """
    import jax  # not at module level: sampler workers import this module and never load JAX

    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    records = []
    for e in range(episodes):
        obs = driver.reset(episode_seed(seed, EVAL_STREAM, first_episode + e))
        ep_key = key if deterministic else jax.random.fold_in(key, first_episode + e)
        steps: dict[str, list] = {"obs": [obs], "action": [], "reward": [], "terminated": [], "truncated": []}
        while True:
            action_dict, _, ep_key = act(actor_params, {k: obs[k] for k in actor_inputs}, ep_key,
                                         deterministic=deterministic)
            action_dict = {k: np.asarray(v) for k, v in action_dict.items()}
            result = driver.step(action_dict)
            returns[e] += result.reward
            obs = result.obs
            if record:
                for k, v in (("obs", obs), ("action", action_dict["action"][0]), ("reward", result.reward),
                             ("terminated", result.terminated), ("truncated", result.truncated)):
                    steps[k].append(v)
            if result.terminated or result.truncated:
                lengths[e] = driver.t
                break
        if record:
            records.append({"observations": {k: np.concatenate([o[k] for o in steps["obs"]]) for k in obs},
                            **{k: np.asarray(steps[k]) for k in ("action", "reward", "terminated", "truncated")}})
    return returns, lengths, records
