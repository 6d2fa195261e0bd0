"""AquaML: reinforcement and imitation learning with Keras 3 models on JAX.

Importing ``aquaml`` only selects Keras' JAX backend; the public names below load their
modules on first use, so processes that only run environments (sampler workers) never
import JAX or Keras.
"""
from importlib import import_module

from aquaml._backend import select_jax_backend as _select_jax_backend

_select_jax_backend()

import aquaml.env  # noqa: E402,F401  (registers the position-only env ids; needs no JAX)

__version__ = "0.3.0"

_EXPORTS = {
    "DataInfo": "aquaml.data", "ReplayBuffer": "aquaml.data", "save_data": "aquaml.data", "load_data": "aquaml.data",
    "RLBaseEnv": "aquaml.env", "GymnasiumEnv": "aquaml.env",
    "SAC": "aquaml.algorithm", "SACParameters": "aquaml.algorithm", "SAC2": "aquaml.algorithm",
    "SAC2_parameter": "aquaml.algorithm",
    "RLTaskStarter": "aquaml.seed", "RunSummary": "aquaml.starter", "load_policy": "aquaml.starter",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aquaml' has no attribute {name!r}")
