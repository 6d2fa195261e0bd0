"""Default MLP actor and Q-network (or any MLP), used when no model classes are given."""
from __future__ import annotations

from typing import Sequence

import math

import keras


def _concat(*inputs):
    return keras.ops.concatenate([keras.ops.reshape(v, (v.shape[0], -1)) for v in inputs], axis=-1)


def _orthogonal(gain: float):
    return keras.initializers.Orthogonal(gain=gain)


def _trunk(hidden: Sequence[int]) -> list:
    # orthogonal initialisation (gain sqrt 2 for ReLU layers) as in the PPO literature
    return [keras.layers.Dense(int(h), activation="relu", kernel_initializer=_orthogonal(math.sqrt(2)))
            for h in hidden]


class MLPActor(keras.Model):
    """Concatenates the named observations, then ``hidden`` ReLU layers, a mean and (for
    stochastic policies) a log-std head. With ``lstm_size`` an LSTM comes first, written
    in the seed's step form: its states ``lstm_h``/``lstm_c`` are named inputs and outputs."""

    STATES = ("lstm_h", "lstm_c")

    def __init__(self, input_name: Sequence[str] = ("obs",), action_shape=(1,), hidden=(64, 64),
                 learning_rate: float = 1e-3, optimizer="Adam", log_std: bool = True, lstm_size: int = 0) -> None:
        super().__init__()
        action_dim = math.prod(action_shape)
        self.input_name = tuple(input_name) + (self.STATES if lstm_size else ())
        self.output_info = {"action": tuple(action_shape)}
        if log_std:
            self.output_info["log_std"] = tuple(action_shape)
        if lstm_size:
            self.output_info.update({k: (int(lstm_size),) for k in self.STATES})
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.lstm = keras.layers.LSTM(int(lstm_size), return_state=True) if lstm_size else None
        self.trunk = _trunk(hidden)
        # a small last layer starts the policy near uniform / zero-mean
        self.mean = keras.layers.Dense(action_dim, kernel_initializer=_orthogonal(0.01))
        self.log_std = keras.layers.Dense(action_dim) if log_std else None
        self._action_shape = tuple(action_shape)

    def call(self, inputs, *more):
        inputs = (inputs, *more)
        states = ()
        if self.lstm is not None:
            *inputs, h, c = inputs
            out, h, c = self.lstm(keras.ops.expand_dims(_concat(*inputs), axis=1), initial_state=[h, c])
            inputs, states = (out,), (h, c)
        x = _concat(*inputs)
        for layer in self.trunk:
            x = layer(x)
        shape = (-1, *self._action_shape)
        heads = (keras.ops.reshape(self.mean(x), shape),)
        if self.log_std is not None:
            heads += (keras.ops.reshape(self.log_std(x), shape),)
        return heads + states

    def reset(self) -> None:
        pass


class MLPCritic(keras.Model):
    """Q(s, a): concatenated observations and action through ``hidden`` ReLU layers; with
    ``outputs > 1`` a general MLP (the VAE's default encoder and decoder)."""

    def __init__(self, input_name: Sequence[str] = ("obs", "action"), hidden=(64, 64),
                 learning_rate: float = 1e-3, optimizer="Adam", outputs: int = 1) -> None:
        super().__init__()
        self.input_name = tuple(input_name)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.trunk = _trunk(hidden)
        self.head = keras.layers.Dense(int(outputs), kernel_initializer=_orthogonal(1.0))

    def call(self, inputs, *more):
        x = _concat(inputs, *more)
        for layer in self.trunk:
            x = layer(x)
        return self.head(x)

    def reset(self) -> None:
        pass
