"""A new environment, two ways: a Gymnasium env registered by id, and the seed's ``RLBaseEnv``.

The task: a point mass on a plane must reach a goal. It observes its position, its
velocity and the goal; reaching the goal ends the episode (a termination), the time
limit cuts it (a truncation). ``docs/new_environment.md`` walks through this file.

    aquaml train sac point_reach:PointReach-v0 --steps 20000       # the Gymnasium id
    RLTaskStarter(PointReachEnv(), {"actor": PositionActor}).run()   # named views, a POMDP actor
"""
from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
from gymnasium import spaces

from aquaml import DataInfo, RLBaseEnv

GOAL_RADIUS = 0.05


class PointReach(gym.Env):
    """Gymnasium form: a Dict observation whose keys become AquaML's named observations."""

    observation_space = spaces.Dict({
        "pos": spaces.Box(-2.0, 2.0, (2,), np.float32),
        "vel": spaces.Box(-np.inf, np.inf, (2,), np.float32),
        "goal": spaces.Box(-1.0, 1.0, (2,), np.float32),
    })
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)  # a force; AquaML rescales [-1, 1] to these bounds

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)  # seeds self.np_random: AquaML's seeded episodes reproduce exactly
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.vel = np.zeros(2, np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        self.vel = 0.9 * self.vel + 0.1 * np.clip(action, -1, 1).astype(np.float32)
        self.pos = np.clip(self.pos + 0.1 * self.vel, -2, 2)
        distance = float(np.linalg.norm(self.pos - self.goal))
        terminated = distance < GOAL_RADIUS  # a real end: no value beyond it
        return self._obs(), -distance, terminated, False, {}

    def _obs(self):
        return {"pos": self.pos.copy(), "vel": self.vel.copy(), "goal": self.goal.copy()}


# `aquaml train sac point_reach:PointReach-v0` imports this module, which registers the id;
# the time limit makes a cut episode a truncation, never a termination.
if "PointReach-v0" not in gym.registry:
    gym.register("PointReach-v0", entry_point=PointReach, max_episode_steps=100)


class PointReachEnv(RLBaseEnv):
    """The seed's form: named observations, with a partial view for the actor.

    ``'obs'`` is the full state (position, velocity, goal) for the critics; ``'pos'`` is the
    position and the goal without the velocity: an actor reading only ``'pos'`` faces a POMDP.
    """

    def __init__(self, max_episode_steps: int = 100):
        super().__init__()
        self.env = PointReach()  # RLBaseEnv.seed() seeds self.env when it is a Gymnasium env
        self.max_episode_steps = max_episode_steps  # the starter's time limit
        self._obs_info = DataInfo(names=("obs", "pos"), shapes=((6,), (4,)), dtypes=np.float32)
        self._action_info = DataInfo(("action",), ((2,),))  # lets the starter build default models

    def _named(self, o) -> dict:
        full = np.concatenate([o["pos"], o["vel"], o["goal"]]).reshape(1, -1)  # a leading batch axis of 1
        return {"obs": full, "pos": full[:, [0, 1, 4, 5]]}

    def reset(self):
        observation, _ = self.env.reset()
        return self.initial_obs(self._named(observation))  # adds the actor's hidden states, if any

    def step(self, action_dict):
        o, reward, terminated, truncated, info = self.env.step(action_dict["action"][0])
        obs = self.check_obs(self._named(o), action_dict)  # feeds hidden states back
        return obs, {"total_reward": reward}, terminated, truncated, info


class PositionActor(keras.Model):
    """An actor that reads only the partial view ``'pos'`` (no velocities)."""

    def __init__(self):
        super().__init__()
        self.hidden = [keras.layers.Dense(64, activation="relu") for _ in range(2)]
        self.mean = keras.layers.Dense(2)
        self.log_std = keras.layers.Dense(2)
        self.input_name = ("pos",)
        self.output_info = {"action": (2,), "log_std": (2,)}
        self.learning_rate = 1e-3
        self.optimizer = "Adam"

    def call(self, pos):
        x = pos
        for layer in self.hidden:
            x = layer(x)
        return self.mean(x), self.log_std(x)

    def reset(self):
        pass
