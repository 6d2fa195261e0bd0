"""AquaML: reinforcement and imitation learning with Keras 3 models on JAX."""
from aquaml._backend import select_jax_backend as _select_jax_backend

_select_jax_backend()

from aquaml.data import DataInfo, ReplayBuffer, load_data, save_data  # noqa: E402
from aquaml.env import GymnasiumEnv, RLBaseEnv  # noqa: E402
from aquaml.algorithm import SAC, SACParameters, SAC2, SAC2_parameter  # noqa: E402
from aquaml.starter import RLTaskStarter, RunSummary  # noqa: E402

__version__ = "0.3.0"

__all__ = [
    "DataInfo", "ReplayBuffer", "save_data", "load_data",
    "RLBaseEnv", "GymnasiumEnv",
    "SAC", "SACParameters", "SAC2", "SAC2_parameter",
    "RLTaskStarter", "RunSummary",
]
