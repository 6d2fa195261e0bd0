"""A Gymnasium environment whose reward comes from a learned reward model.

AIRL learns a reward ``g(s, a)`` (its ``'discriminator'`` role) meant to transfer: a fresh agent
trained on it should behave like the expert. :class:`LearnedReward` wraps an environment and
replaces its reward with a :class:`RewardModel`, which
:func:`aquaml.starter.loading.load_reward` reads from a run folder's newest checkpoint; the
environment's own reward stays in ``info['env_reward']``::

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

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from aquaml.env.base import RLBaseEnv

#: scores a batch of named inputs (float32 arrays with a leading batch axis): ``g`` per row
Scorer = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class RewardModel:
    """A learned reward ``scale * g(inputs)``.

    ``make_scorer`` builds the scoring function; each process that steps a wrapped environment
    calls it once (sampler workers receive the model pickled, so it must be picklable: a
    module-level function or a ``functools.partial`` of one).
    """

    input_shapes: Mapping[str, tuple[int, ...]]  #: the model's named inputs without the batch axis
    scale: float
    make_scorer: Callable[[], Scorer]
    source: str = ""  #: where it came from, for messages

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, (int, float)) and self.scale > 0):
            raise ValueError(f"a learned reward's scale must be a positive number, got {self.scale!r}")


def learned_reward_factory(env, reward: RewardModel) -> Callable[[], "LearnedReward"]:
    """A factory of :class:`LearnedReward` copies of ``env`` (a Gymnasium id, ``gymnasium.Env``
    or a factory of one)."""
    if isinstance(env, RLBaseEnv) or not (isinstance(env, (str, gym.Env)) or callable(env)):
        raise TypeError(f"a learned reward wraps Gymnasium environments; got {type(env).__name__} (pass a "
                        "Gymnasium id, a gymnasium.Env or a factory of one)")
    if isinstance(env, gym.Env):
        import copy

        template = copy.deepcopy(env)
        make = lambda: copy.deepcopy(template)  # noqa: E731
    else:
        make = (lambda: env) if isinstance(env, str) else env
    return lambda: LearnedReward(make(), reward)


class LearnedReward(gym.Wrapper):
    """``env`` (a Gymnasium id or instance) with the reward of ``reward``."""

    def __init__(self, env: str | gym.Env, reward: RewardModel) -> None:
        super().__init__(gym.make(env) if isinstance(env, str) else env)
        if not isinstance(self.env.action_space, gym.spaces.Box):
            raise ValueError(f"a learned reward reads actions from a Box action space; {self.env} has "
                             f"{type(self.env.action_space).__name__} actions")
        self.reward_model, self.scale = reward, float(reward.scale)
        self.input_shapes = dict(reward.input_shapes)
        self._score = reward.make_scorer()
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
        reward = self.scale * float(self._score(inputs)[0])
        self._obs = after
        return observation, reward, terminated, truncated, {**info, "env_reward": float(env_reward)}
