"""A Gymnasium environment whose reward comes from a learned reward model.

AIRL learns a reward ``g(s, a)`` (its ``'discriminator'`` role) meant to transfer: a fresh agent
trained on it should behave like the expert. :class:`LearnedReward` wraps an environment and
replaces its reward with the model of a run folder, loaded read-only from the newest
checkpoint; the environment's own reward stays in ``info['env_reward']``::

    RLTaskStarter("Pendulum-v1", algo=SAC, reward_model="runs/airl_Pendulum-v1/<timestamp>").run()
    # or: aquaml train sac Pendulum-v1 --reward-model runs/airl_Pendulum-v1/<timestamp>

There the training environments learn from the model while evaluations (and ``aquaml eval``)
report the task's own return; ``config.json`` records the model's run folder for resumes.

The model reads named inputs as the discriminator did: the observations (``'obs'`` for a Box
space, the keys of a Dict space), ``'action'`` in ``[-1, 1]`` and ``next_<name>``. Computing
the reward imports JAX in the process that steps the environment (also in sampler workers).

The reward is ``scale * g``. An adversarial reward has no fixed scale (AIRL's ``g`` on Pendulum
spans hundreds per step), and a fresh SAC learns slowly from rewards that large, so by default
(``scale='auto'``) ``g`` is divided by its standard deviation over the transitions the run
learned from: its checkpointed replay buffer and its expert dataset. A positive factor leaves
the optimal policy unchanged. The reward is read from the run's *newest* checkpoint: a run that
trains on it resumes exactly only while that run is left as it was.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def learned_reward_factory(env, run_dir, role: str = "discriminator"):
    """A factory of :class:`LearnedReward` copies of ``env`` (a Gymnasium id, ``gymnasium.Env``
    or a factory of one); the automatic scale is computed once, here."""
    from aquaml.env.base import RLBaseEnv

    if isinstance(env, RLBaseEnv) or not (isinstance(env, (str, gym.Env)) or callable(env)):
        raise TypeError(f"a learned reward wraps Gymnasium environments; got {type(env).__name__} (pass a "
                        "Gymnasium id, a gymnasium.Env or a factory of one)")
    if isinstance(env, gym.Env):
        import copy

        template = copy.deepcopy(env)
        make = lambda: copy.deepcopy(template)  # noqa: E731
    else:
        make = (lambda: env) if isinstance(env, str) else env
    first = LearnedReward(make(), run_dir, role)
    scale = first.scale
    first.close()
    return lambda: LearnedReward(make(), run_dir, role, scale)


class LearnedReward(gym.Wrapper):
    """``env`` (a Gymnasium id or instance) with the reward of ``run_dir``'s ``role`` model."""

    def __init__(self, env: str | gym.Env, run_dir, role: str = "discriminator", scale: float | str = "auto") -> None:
        super().__init__(gym.make(env) if isinstance(env, str) else env)
        import jax

        from aquaml.starter.evaluation import load_state

        agent, state, _ = load_state(run_dir)
        if role not in agent.models:
            raise ValueError(f"{run_dir} has no {role!r} model; its roles are {', '.join(agent.models)}")
        spec, params = agent.models[role], agent.algo.model_params(state)[role]
        if spec.state_outputs:
            raise ValueError(f"the {role} model of {run_dir} is recurrent; a learned reward reads single transitions")
        if not isinstance(self.env.action_space, gym.spaces.Box):
            raise ValueError(f"a learned reward reads actions from a Box action space; {self.env} has "
                             f"{type(self.env.action_space).__name__} actions")
        agent.env.close()
        self.input_shapes = dict(spec.input_shapes)
        self._apply = jax.jit(lambda p, inputs: spec.fn.apply(p, inputs).reshape(-1))
        self._params = params
        if scale == "auto":
            scale = 1.0 / (float(np.std(self._score(self._seen(run_dir)))) + 1e-8)
        elif not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(f"scale must be 'auto' or a positive number, got {scale!r}")
        self.scale = float(scale)
        space = self.env.action_space
        self._low, self._high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        self._obs: Any = None

    @staticmethod
    def _seen(run_dir) -> dict[str, np.ndarray]:
        """Transitions the run learned from: its replay buffer (if checkpointed) and its dataset."""
        from aquaml.data import DatasetError
        from aquaml.data.collect import replay_dataset
        from aquaml.data.io import load_dataset
        from aquaml.starter.run_folder import RunFolder

        parts = []
        try:
            parts.append(replay_dataset(run_dir).transitions())
        except DatasetError:  # an on-policy generator keeps no buffer
            pass
        config = RunFolder.open(run_dir).config
        path = config.get("dataset", {}).get("path")
        if path:
            data = load_dataset(path)
            first = config.get("parameters", {}).get("max_episodes")  # the episodes the run learned from
            parts.append((data.select(range(first)) if first else data).transitions())
        if not parts:
            raise ValueError(f"{run_dir} keeps no transitions to set the reward's scale from; give scale=<number>")
        keys = set.intersection(*(set(p) for p in parts))
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def _score(self, transitions: dict[str, np.ndarray]) -> np.ndarray:
        """``g`` of flat transitions (``obs/<name>``, ``next_obs/<name>``, ``action`` in [-1, 1])."""
        inputs = {}
        for name, shape in self.input_shapes.items():
            key = "action" if name == "action" else f"obs/{name}"
            if key not in transitions:
                key = f"next_obs/{name[len('next_'):]}"
            inputs[name] = transitions[key].reshape(-1, *shape).astype(np.float32)
        return np.asarray(self._apply(self._params, inputs))

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
        reward = self.scale * float(self._apply(self._params, inputs)[0])
        self._obs = after
        return observation, reward, terminated, truncated, {**info, "env_reward": float(env_reward)}
