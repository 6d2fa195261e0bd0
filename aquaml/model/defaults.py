"""Default MLP actor and Q-network, used when no model classes are given."""
from __future__ import annotations

from typing import Sequence

import math

import keras


def _concat(*inputs):
    return keras.ops.concatenate([keras.ops.reshape(v, (v.shape[0], -1)) for v in inputs], axis=-1)


def _trunk(hidden: Sequence[int]) -> list:
    return [keras.layers.Dense(int(h), activation="relu") for h in hidden]


class MLPActor(keras.Model):
    """Concatenates the named observations, then ``hidden`` ReLU layers, a mean and (for
    stochastic policies) a log-std head."""

    def __init__(self, input_name: Sequence[str] = ("obs",), action_shape=(1,), hidden=(64, 64),
                 learning_rate: float = 1e-3, optimizer="Adam", log_std: bool = True) -> None:
        super().__init__()
        self.input_name = tuple(input_name)
        action_dim = math.prod(action_shape)
        self.output_info = {"action": tuple(action_shape)}
        if log_std:
            self.output_info["log_std"] = tuple(action_shape)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.trunk = _trunk(hidden)
        self.mean = keras.layers.Dense(action_dim)
        self.log_std = keras.layers.Dense(action_dim) if log_std else None
        self._action_shape = tuple(action_shape)

    def call(self, inputs, *more):
        x = _concat(inputs, *more)
        for layer in self.trunk:
            x = layer(x)
        shape = (-1, *self._action_shape)
        mean = keras.ops.reshape(self.mean(x), shape)
        if self.log_std is None:
            return (mean,)
        return mean, keras.ops.reshape(self.log_std(x), shape)

    def reset(self) -> None:
        pass


class MLPCritic(keras.Model):
    """Q(s, a): concatenated observations and action through ``hidden`` ReLU layers."""

    def __init__(self, input_name: Sequence[str] = ("obs", "action"), hidden=(64, 64),
                 learning_rate: float = 1e-3, optimizer="Adam") -> None:
        super().__init__()
        self.input_name = tuple(input_name)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.trunk = _trunk(hidden)
        self.head = keras.layers.Dense(1)

    def call(self, inputs, *more):
        x = _concat(inputs, *more)
        for layer in self.trunk:
            x = layer(x)
        return self.head(x)

    def reset(self) -> None:
        pass
