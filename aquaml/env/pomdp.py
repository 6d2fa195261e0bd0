"""Partially observable variants: velocities removed from Pendulum and CartPole.

Two forms, as in the seed's POMDP example:

* Gymnasium ids ``PendulumNoVel-v1`` and ``CartPoleNoVel-v1`` (usable from the CLI),
  whose only observation is the positions;
* :class:`PositionOnlyEnv`, an ``RLBaseEnv`` with two named views: ``'obs'`` (the full
  state, for critics) and ``'pos'`` (positions only, for the actor).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from aquaml.data import DataInfo
from aquaml.env.gym_env import GymnasiumEnv

#: which entries of the full observation are positions
POSITION_INDICES = {
    "Pendulum-v1": (0, 1),  # cos(theta), sin(theta); theta-dot removed
    "CartPole-v1": (0, 2),  # cart position, pole angle; both velocities removed
}
NO_VEL_IDS = {"PendulumNoVel-v1": "Pendulum-v1", "CartPoleNoVel-v1": "CartPole-v1"}


class VelocityMasked(gym.ObservationWrapper):
    """Keeps only the position entries of a Box observation."""

    def __init__(self, env: gym.Env, indices) -> None:
        super().__init__(env)
        self.indices = np.asarray(indices)
        box = env.observation_space
        self.observation_space = gym.spaces.Box(box.low[self.indices], box.high[self.indices], dtype=box.dtype)

    def observation(self, observation):
        return observation[self.indices]


def make_no_vel(base_id: str, **kwargs) -> gym.Env:
    # the registered id adds the time limit, so the base env goes in without its own
    return VelocityMasked(gym.make(base_id, **kwargs).unwrapped, POSITION_INDICES[base_id])


def register() -> None:
    for new_id, base_id in NO_VEL_IDS.items():
        if new_id not in gym.registry:
            gym.register(new_id, entry_point=make_no_vel, kwargs={"base_id": base_id},
                         max_episode_steps=gym.spec(base_id).max_episode_steps)


class PositionOnlyEnv(GymnasiumEnv):
    """The seed's POMDP wrapper: ``'obs'`` is the full state, ``'pos'`` the positions only."""

    def __init__(self, env_id: str = "Pendulum-v1", **make_kwargs) -> None:
        if env_id not in POSITION_INDICES:
            raise ValueError(f"no position-only view of {env_id!r}; known: {', '.join(POSITION_INDICES)}")
        super().__init__(env_id, **make_kwargs)
        self._pos = list(POSITION_INDICES[env_id])
        self._obs_info = DataInfo(("obs", "pos"), (self._obs_info.shapes[0], (len(self._pos),)), np.float32)

    def _named(self, observation) -> dict[str, np.ndarray]:
        full = np.asarray(observation, np.float32).reshape(1, -1)
        return {"obs": full, "pos": full[:, self._pos]}
