"""``EnvDriver``: steps one ``RLBaseEnv``, checks what it returns, and normalises it.

Every observation is checked at every step (declared name, shape ``(1, *shape)``, finite
values) so that a broken environment fails with its name in the message instead of
training on garbage. Checking costs a few microseconds per step.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from aquaml.env.base import RLBaseEnv
from aquaml.env.gym_env import GymnasiumEnv
from aquaml.tools.imports import import_module


class EnvContractError(ValueError):
    """The environment returned something that breaks the ``RLBaseEnv`` contract."""


@dataclass
class StepResult:
    obs: dict[str, np.ndarray]  # the observation reached, before any reset
    reward: float
    terminated: bool  # a true end of the task: no bootstrapping
    truncated: bool  # a time limit or other cut: targets bootstrap through it
    info: dict


def make_env(env: str | RLBaseEnv | gym.Env | Callable[[], Any], **make_kwargs) -> RLBaseEnv:
    """Turn a Gymnasium id, a Gymnasium env, an ``RLBaseEnv`` or a factory into an ``RLBaseEnv``.

    An id may name the module that registers it, as in Gymnasium: ``'my_pkg.envs:Reach-v0'``, or
    its file, ``'path/to/envs.py:Reach-v0'`` (see :func:`aquaml.tools.imports.import_module`);
    ``make_kwargs`` (e.g. ``render_mode``) go to ``gymnasium.make`` with an id.
    """
    if isinstance(env, RLBaseEnv):
        return env
    if isinstance(env, str):
        module, sep, env_id = env.rpartition(":")
        if sep:  # Gymnasium's "module:EnvId": importing the module registers the id
            try:
                import_module(module)
            except ImportError as e:
                raise ValueError(f"environment {env!r}: {e}") from e
            env = env_id
        if env not in gym.registry:
            from aquaml.tools.console import did_you_mean

            raise ValueError(f"unknown environment id {env!r}{did_you_mean(env, gym.registry)}; "
                             "`aquaml params --envs` lists every id")
        return GymnasiumEnv(env, **make_kwargs)
    if isinstance(env, gym.Env):
        return GymnasiumEnv(env)
    if callable(env):
        return make_env(env())
    raise TypeError(f"env must be a Gymnasium id, an RLBaseEnv, a gymnasium.Env or a factory, got {type(env).__name__}")


def is_class_path(env: str) -> bool:
    """``package.module:ClassName`` (an env class to import), not ``module:Env-v0`` (a registered id)."""
    return ":" in env and env.rpartition(":")[2].replace(".", "_").isidentifier()


def env_factory(env) -> Callable[[], RLBaseEnv]:
    """A function that builds fresh, independent copies of ``env`` (for evaluation)."""
    if isinstance(env, str) or (callable(env) and not isinstance(env, (RLBaseEnv, gym.Env))):
        return lambda: make_env(env)
    try:
        template = copy.deepcopy(env)  # before it is stepped, so copies start clean
    except Exception as e:
        raise TypeError(
            f"the environment {type(env).__name__} cannot be copied for evaluation ({e}); pass a factory "
            "instead, e.g. env=lambda: MyEnv(...)") from e
    return lambda: make_env(copy.deepcopy(template))


def _flag(value) -> bool:
    return value if type(value) is bool else bool(np.any(value))


class EnvDriver:
    """Runs an ``RLBaseEnv`` for the framework: seeding, checking, time limits."""

    def __init__(self, env: RLBaseEnv, episode_length: int | None = None) -> None:
        self.env = env
        self.name = type(env).__name__
        self.episode_length = episode_length
        info = env.obs_info
        self.shapes = {**info.shape_dict, **{k: tuple(v) for k, v in env._state_shapes.items()}}
        self.dtypes = {**info.type_dict, **{k: np.dtype(np.float32) for k in env._state_shapes}}
        self._names = frozenset(self.shapes)
        self._checks = [(name, (1, *shape), self.dtypes[name], self.dtypes[name].kind == "f")
                        for name, shape in self.shapes.items()]
        # The seed's wrappers may scale actions in place, so they get copies; the Gymnasium
        # adapter builds new arrays itself.
        self._copy_actions = not isinstance(env, GymnasiumEnv)
        self.t = 0

    def _check_obs(self, obs, where: str) -> dict[str, np.ndarray]:
        if not isinstance(obs, Mapping):
            raise EnvContractError(
                f"{self.name}.{where} returned {type(obs).__name__} as observation; return a dict "
                f"of named observations {tuple(self.shapes)}"
            )
        unknown = obs.keys() - self._names
        if unknown:
            raise EnvContractError(
                f"{self.name}.{where} returned observations {sorted(unknown)} that _obs_info does "
                f"not declare (declared: {tuple(self.shapes)}); add them to _obs_info or drop them"
            )
        out = {}
        for name, shape, dtype, floating in self._checks:
            if name not in obs:
                hint = " (call self.initial_obs/check_obs on it)" if name in self.env._state_shapes else ""
                raise EnvContractError(f"{self.name}.{where} did not return observation {name!r}{hint}")
            value = np.asarray(obs[name])
            if value.shape != shape:
                raise EnvContractError(
                    f"{self.name}.{where}: observation {name!r} has shape {value.shape}, expected "
                    f"{shape} (a leading batch dimension of 1, e.g. x.reshape(1, -1))"
                )
            if value.dtype.kind not in "fiub":
                raise EnvContractError(f"{self.name}.{where}: observation {name!r} has non-numeric dtype {value.dtype}")
            value = value.astype(dtype, copy=False)
            # a float64 sum is finite exactly when every element is (NaN and inf propagate)
            if floating and not math.isfinite(value.sum(dtype=np.float64)):
                raise EnvContractError(
                    f"{self.name}.{where}: observation {name!r} contains NaN or inf at episode step {self.t}: {value}"
                )
            out[name] = value
        return out

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None:
            self.env.seed(seed)
        obs = self.env.reset()
        if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
            obs = obs[0]  # Gymnasium-style (obs, info)
        self.t = 0
        return self._check_obs(obs, "reset()")

    def step(self, action_dict: Mapping[str, np.ndarray]) -> StepResult:
        """Step the env and return a checked, normalised :class:`StepResult`.

        Termination takes precedence, as in Gymnasium: a seed-style ``done`` is a termination
        unless ``info['TimeLimit.truncated']`` is true, even on the last allowed step. Reaching
        ``episode_length`` without a termination is a truncation. On a terminated step the
        driver adds no truncation of its own (a 5-value env's own ``truncated`` is passed
        through), so a real end on the last allowed step is never bootstrapped.
        """
        result = self.env.step({k: np.array(v) for k, v in action_dict.items()} if self._copy_actions
                               else dict(action_dict))
        if not isinstance(result, tuple) or len(result) not in (4, 5):
            raise EnvContractError(
                f"{self.name}.step() must return (obs, reward, done, info) or (obs, reward, "
                f"terminated, truncated, info), got {type(result).__name__} of length {len(result) if isinstance(result, tuple) else '?'}"
            )
        self.t += 1
        at_limit = self.episode_length is not None and self.t >= self.episode_length
        if len(result) == 4:
            obs, reward, done, info = result
            info = dict(info or {})
            # The seed's single `done` cannot tell a time limit from a real end. Only the info
            # key makes it a time limit (Gymnasium's rule): a done on the last allowed step may
            # be a real end, which must not be bootstrapped.
            done = _flag(done)
            truncated = done and _flag(info.get("TimeLimit.truncated", False))
            terminated = done and not truncated
        else:
            obs, reward, terminated, truncated, info = result
            terminated, truncated = _flag(terminated), _flag(truncated)
            info = info if type(info) is dict else dict(info or {})
        obs = self._check_obs(obs, "step()")
        reward = self._reward(reward)
        if at_limit and not terminated:
            truncated = True
        return StepResult(obs, reward, terminated, truncated, info)

    def _reward(self, reward) -> float:
        if type(reward) is float:  # the common case, without numpy
            if not math.isfinite(reward):
                raise EnvContractError(f"{self.name}.step(): reward is {reward} at episode step {self.t}")
            return reward
        if isinstance(reward, Mapping):
            if "total_reward" not in reward:
                raise EnvContractError(f"{self.name}.step(): the reward dict must contain 'total_reward', got {sorted(reward)}")
            reward = reward["total_reward"]
        value = np.asarray(reward, np.float64)
        if value.size != 1:
            raise EnvContractError(f"{self.name}.step(): reward must be a single number, got shape {value.shape}")
        value = float(value.reshape(()))
        if not np.isfinite(value):
            raise EnvContractError(f"{self.name}.step(): reward is {value} at episode step {self.t}")
        return value

    def close(self) -> None:
        self.env.close()
