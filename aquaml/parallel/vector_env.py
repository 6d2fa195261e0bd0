"""``SharedMemoryVectorEnv``: a Gymnasium vector env whose environments run in worker processes.

Observations, actions, rewards, terminations and truncations live in one preallocated
shared-memory table that the workers write in place; a step exchanges at most one byte
per worker through a pipe (none while both sides are spinning). Nothing is pickled per
step, so the per-step infos of the sub-environments are not transferred: ``step`` returns
``final_obs``/``_final_obs`` in same-step mode and otherwise an empty info dict.

Autoreset follows ``gymnasium.vector.AutoresetMode`` (``metadata['autoreset_mode']``):
next-step (the default, as in Gymnasium), same-step, or disabled (reset finished envs with
``reset(options={'reset_mask': mask})``).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from aquaml.parallel.block import DISABLED, NEXT_STEP, SAME_STEP, Field, table_fields
from aquaml.parallel.pool import make_pool

_MODES = {AutoresetMode.NEXT_STEP: NEXT_STEP, AutoresetMode.SAME_STEP: SAME_STEP, AutoresetMode.DISABLED: DISABLED}
_ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def _field(space: gym.Space, what: str) -> Field:
    if not isinstance(space, _ARRAY_SPACES):
        raise TypeError(f"{what} space {space} is not supported by SharedMemoryVectorEnv: use Box, Discrete, "
                        "MultiDiscrete, MultiBinary or a Dict of them")
    return tuple(space.shape), np.dtype(space.dtype)


def _obs_fields(space: gym.Space) -> dict[str, Field]:
    if isinstance(space, spaces.Dict):
        return {k: _field(sub, f"observation {k!r}") for k, sub in space.spaces.items()}
    return {"obs": _field(space, "observation")}


class GymStepper:
    """A Gymnasium env as a block stepper: its observation becomes ``{'obs': x}`` or the Dict's keys."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.dict_obs = isinstance(env.observation_space, spaces.Dict)
        self.discrete = isinstance(env.action_space, spaces.Discrete)

    def _named(self, obs):
        return obs if self.dict_obs else {"obs": obs}

    def reset(self, seed):
        return self._named(self.env.reset(seed=seed)[0])

    def step(self, action):
        a = action["action"]  # a view of the shared table: the env gets its own copy
        obs, reward, terminated, truncated, _ = self.env.step(int(a) if self.discrete else a.copy())
        return self._named(obs), float(reward), bool(terminated), bool(truncated)

    def close(self) -> None:
        self.env.close()


def gym_steppers(env_fns: Sequence[Callable[[], gym.Env]]) -> list[GymStepper]:
    return [GymStepper(fn()) for fn in env_fns]


class SharedMemoryVectorEnv(VectorEnv):
    """Runs ``env_fns`` in ``n_workers`` processes (``envs_per_worker`` envs each by default).

    Args:
        env_fns: functions that create the environments (pickled once with cloudpickle).
        n_workers: worker processes; default ``len(env_fns)`` envs split one per worker, or
            as many as ``envs_per_worker`` implies.
        envs_per_worker: alternative to ``n_workers``.
        autoreset_mode: a ``gymnasium.vector.AutoresetMode`` (default next-step).
        copy: return copies of the observations (else views that the next step overwrites).
        spin_s: how long a waiting process polls before sleeping (None: automatic).
        yield_cpu: yield the core between polls (None: when processes outnumber cores).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], n_workers: int | None = None,
                 envs_per_worker: int | None = None, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 copy: bool = True, spin_s: float | None = None, yield_cpu: bool | None = None) -> None:
        env_fns = list(env_fns)
        if not env_fns:
            raise ValueError("env_fns is empty")
        self.num_envs = len(env_fns)
        if n_workers is None:
            n_workers = self.num_envs if envs_per_worker is None else -(-self.num_envs // int(envs_per_worker))
        autoreset_mode = AutoresetMode(autoreset_mode)
        probe = env_fns[0]()  # the spaces, from one env built here and closed again
        try:
            self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
            self.metadata = dict(probe.metadata, autoreset_mode=autoreset_mode)
            self.render_mode, self.spec = probe.render_mode, probe.spec
        finally:
            probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._dict_obs = isinstance(self.single_observation_space, spaces.Dict)
        obs = _obs_fields(self.single_observation_space)
        action = {"action": _field(self.single_action_space, "action")}
        self.autoreset_mode, self.copy = autoreset_mode, copy
        self.pool = make_pool(env_fns, table_fields(self.num_envs, obs, action), gym_steppers,
                              _MODES[autoreset_mode], n_workers, spin_s=spin_s, yield_cpu=yield_cpu)
        a = self.pool.arrays
        self._obs = {k: a[f"obs/{k}"] for k in obs}
        self._final = {k: a[f"final_obs/{k}"] for k in obs}
        self._action = a["act/action"]
        self._done = np.zeros(self.num_envs, bool)
        self.closed = False

    def _observations(self, table) -> Any:
        out = {k: (v.copy() if self.copy else v) for k, v in table.items()}
        return out if self._dict_obs else out["obs"]

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"SharedMemoryVectorEnv.reset passes no options to the environments except "
                             f"'reset_mask'; got {sorted(options)}")
        if seed is None:
            seeds = [-1] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = [-1 if s is None else int(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} environments")
        a = self.pool.arrays
        a["reset_seed"][:] = seeds
        if mask is not None and np.shape(mask) != (self.num_envs,):
            raise ValueError(f"reset_mask has shape {np.shape(mask)}, expected ({self.num_envs},)")
        a["reset_mask"][:] = True if mask is None else np.asarray(mask, bool)
        self.pool.run("reset")
        a["reset_seed"][:] = -1  # autoresets are unseeded, as in Gymnasium
        self._done &= ~a["reset_mask"]
        return self._observations(self._obs), {}

    def step(self, actions):
        actions = np.asarray(actions, self._action.dtype)
        if actions.shape != self._action.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected {self._action.shape} "
                             f"({self.num_envs} envs x action shape {self._action.shape[1:]})")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._done.any():
            raise RuntimeError(f"envs {np.flatnonzero(self._done).tolist()} finished; with autoreset disabled, "
                               "reset them with reset(options={'reset_mask': mask}) before stepping")
        self._action[:] = actions
        self.pool.run("step")
        a = self.pool.arrays
        terminated, truncated = a["terminated"].copy(), a["truncated"].copy()
        done = terminated | truncated
        self._done = done
        infos: dict = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final = np.full(self.num_envs, None, object)
            for i in np.flatnonzero(done):
                final[i] = ({k: v[i].copy() for k, v in self._final.items()} if self._dict_obs
                            else self._final["obs"][i].copy())
            infos = {"final_obs": final, "_final_obs": done.copy()}
        return self._observations(self._obs), a["reward"].copy(), terminated, truncated, infos

    def close_extras(self, **kwargs) -> None:
        self.pool.close()

    def __enter__(self) -> "SharedMemoryVectorEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
