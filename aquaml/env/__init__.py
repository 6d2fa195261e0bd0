"""Environments: the ``RLBaseEnv`` contract, the Gymnasium adapter and the checked driver."""
from aquaml.env.base import ActionSpace, RLBaseEnv
from aquaml.env.gym_env import GymnasiumEnv
from aquaml.env.driver import EnvContractError, EnvDriver, StepResult, env_factory, make_env

__all__ = ["ActionSpace", "RLBaseEnv", "GymnasiumEnv", "EnvDriver", "EnvContractError", "StepResult", "make_env", "env_factory"]
