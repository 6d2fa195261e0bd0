"""A Gymnasium environment whose reward comes from a learned reward model.

AIRL learns a reward ``g(s, a)`` (its ``'discriminator'`` role) meant to transfer: a fresh agent
trained on it should behave like the expert. :class:`LearnedReward` wraps an environment and
replaces its reward with the model of a run folder, loaded read-only from the newest
checkpoint; the environment's own reward stays in ``info['env_reward']``::

    make = lambda: LearnedReward("Pendulum-v1", "runs/airl_Pendulum-v1/<timestamp>")
    RLTaskStarter(make, algo=SAC).run()

The model reads named inputs as the discriminator did: the observations (``'obs'`` for a Box
space, the keys of a Dict space), ``'action'`` in ``[-1, 1]`` and ``next_<name>``. Computing
the reward imports JAX in the process that steps the environment (also in sampler workers).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class LearnedReward(gym.Wrapper):
    """``env`` (a Gymnasium id or instance) with the reward of ``run_dir``'s ``role`` model."""

    def __init__(self, env: str | gym.Env, run_dir, role: str = "discriminator") -> None:
        super().__init__(gym.make(env) if isinstance(env, str) else env)
        import jax

        from aquaml.starter.evaluation import load_state

        agent, state, _ = load_state(run_dir)
        if role not in agent.models:
            raise ValueError(f"{run_dir} has no {role!r} model; its roles are {', '.join(agent.models)}")
        spec, params = agent.models[role], agent.algo.model_params(state)[role]
        agent.env.close()
        self.input_shapes = dict(spec.input_shapes)
        self._apply = jax.jit(lambda p, inputs: spec.fn.apply(p, inputs).reshape(()))
        self._params = params
        space = self.env.action_space
        self._low, self._high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        self._obs: Any = None

    def _named(self, observation) -> dict[str, np.ndarray]:
        if isinstance(observation, dict):
            return {k: np.asarray(v, np.float32) for k, v in observation.items()}
        return {"obs": np.asarray(observation, np.float32)}

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self._obs = self._named(observation)
        return observation, info

    def step(self, action):
        observation, env_reward, terminated, truncated, info = self.env.step(action)
        after = self._named(observation)
        scaled = 2.0 * (np.asarray(action, np.float64) - self._low) / (self._high - self._low) - 1.0
        inputs = {}
        for name, shape in self.input_shapes.items():
            if name == "action":
                value = scaled
            elif name in self._obs:
                value = self._obs[name]
            else:
                value = after[name[len("next_"):]]
            inputs[name] = np.asarray(value, np.float32).reshape(1, *shape)
        reward = float(self._apply(self._params, inputs))
        self._obs = after
        return observation, reward, terminated, truncated, {**info, "env_reward": float(env_reward)}
