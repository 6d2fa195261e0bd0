"""Adapter that makes any Gymnasium environment an :class:`RLBaseEnv`."""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from aquaml.data import DataInfo
from aquaml.env.base import ActionUnits, RLBaseEnv


def _box_check(space, what: str, env_name: str) -> None:
    if not isinstance(space, spaces.Box):
        raise TypeError(
            f"{env_name}: {what} space {space} is not supported by the Gymnasium adapter "
            "(only Box spaces, or a Dict of Box spaces for observations); wrap the env in "
            "an RLBaseEnv subclass that converts it"
        )


class GymnasiumEnv(RLBaseEnv):
    """Wraps a Gymnasium env (an id, an instance or a factory).

    Box observations become one observation named ``'obs'``; each key of a Dict
    observation space becomes a named observation. Actions in ``[-1, 1]`` are rescaled to
    the bounds of a Box action space; a Discrete action space takes an integer index.
    """

    def __init__(self, env: str | gym.Env | Callable[[], gym.Env], **make_kwargs) -> None:
        super().__init__()
        if isinstance(env, str):
            self.env = gym.make(env, **make_kwargs)
        elif isinstance(env, gym.Env):
            self.env = env
        else:
            self.env = env()
        self.env_name = getattr(self.env.spec, "id", type(self.env.unwrapped).__name__)
        obs_space = self.env.observation_space
        if isinstance(obs_space, spaces.Dict):
            for key, sub in obs_space.spaces.items():
                _box_check(sub, f"observation {key!r}", self.env_name)
            self._keys = tuple(obs_space.spaces)
            self._obs_info = DataInfo(self._keys, [sub.shape for sub in obs_space.spaces.values()], np.float32)
        else:
            _box_check(obs_space, "observation", self.env_name)
            self._keys = None
            self._obs_info = DataInfo(("obs",), (obs_space.shape,), np.float32)
        act = self.env.action_space
        self._seed: int | None = None
        if isinstance(act, spaces.Discrete):
            self._action_info = DataInfo(("action",), ((int(act.n),),), np.int64)
            self._units = ActionUnits(start=int(act.start))
            return
        _box_check(act, "action", self.env_name)
        if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
            raise ValueError(f"{self.env_name}: action space {act} is unbounded; squashed actions need finite bounds")
        self._action_info = DataInfo(("action",), (act.shape,), np.float32)
        self._units = ActionUnits(act.low.astype(np.float64), act.high.astype(np.float64), dtype=np.dtype(act.dtype))

    @property
    def action_units(self) -> ActionUnits:
        return self._units

    @property
    def max_episode_steps(self) -> int | None:
        return getattr(self.env.spec, "max_episode_steps", None)

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self.env.action_space.seed(int(seed))

    def _named(self, observation) -> dict[str, np.ndarray]:
        if self._keys is None:
            return {"obs": np.asarray(observation, np.float32).reshape(1, *self._obs_info.shapes[0])}
        return {k: np.asarray(observation[k], np.float32).reshape(1, *s)
                for k, s in zip(self._keys, self._obs_info.shapes)}

    def reset(self) -> dict[str, np.ndarray]:
        observation, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return self.initial_obs(self._named(observation))

    def _env_action(self, action):
        if self._units.discrete:
            return int(self._units(np.asarray(action).reshape(-1)[0]))
        return self._units(np.asarray(action).reshape(self.env.action_space.shape))

    def step(self, action_dict):
        observation, reward, terminated, truncated, info = self.env.step(self._env_action(action_dict["action"]))
        obs = self.check_obs(self._named(observation), action_dict)
        return obs, float(reward), bool(terminated), bool(truncated), info


def action_metadata(env) -> dict:
    """The action bounds (Box) or number of actions (Discrete) of an adapted Gymnasium env, as
    a dataset's metadata records them; empty for environments without a Gymnasium space."""
    space = getattr(getattr(env, "env", None), "action_space", None)
    low, high, n = getattr(space, "low", None), getattr(space, "high", None), getattr(space, "n", None)
    if low is not None and high is not None:
        return {"action_low": np.asarray(low, np.float64).tolist(), "action_high": np.asarray(high, np.float64).tolist()}
    if n is not None:
        return {"n_actions": int(n)}
    return {}
