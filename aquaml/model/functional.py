"""Keras models as pure functions of their parameters, for ``jax.jit`` training steps."""
from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class ModelFunction:
    """A built Keras model seen as ``apply(params, inputs) -> outputs``.

    ``params`` is the list of the model's trainable variable values; ``inputs`` maps
    names to arrays and is passed positionally in ``input_names`` order, as the seed's
    ``call(self, obs, hidden1, ...)`` expects.
    """

    def __init__(self, model, input_names: Sequence[str]) -> None:
        self.model = model
        self.name = type(model).__name__
        self.input_names = tuple(input_names)
        # Seed-generator states (LSTM, Dropout) are the only non-trainable variables allowed:
        # calls run in inference mode, where they are never read, so they stay constants.
        # Running statistics (BatchNormalization) would need updating, which is not supported.
        stateful = [v.path for v in model.non_trainable_variables if "seed_generator" not in v.path]
        if stateful:
            raise TypeError(
                f"{self.name} has non-trainable state {stateful} (e.g. BatchNormalization statistics); "
                "AquaML's jitted updates treat models as pure functions of trainable weights, so "
                "replace those layers (LayerNormalization works)"
            )
        self.constants = [v.value for v in model.non_trainable_variables]

    def init_params(self) -> list[jax.Array]:
        return [jnp.array(v.value) for v in self.model.trainable_variables]

    def apply(self, params, inputs: Mapping[str, jax.Array]):
        args = [inputs[n] for n in self.input_names]
        outputs, _ = self.model.stateless_call(params, self.constants, *args)
        return outputs

    def assign(self, params) -> None:
        """Write ``params`` into the Keras variables (before saving weights or plain calls)."""
        for var, value in zip(self.model.trainable_variables, params):
            var.assign(np.asarray(value))

    def save_weights(self, path: str, params) -> None:
        self.assign(params)
        self.model.save_weights(path)

    def load_weights(self, path: str) -> list[jax.Array]:
        self.model.load_weights(path)
        return self.init_params()
