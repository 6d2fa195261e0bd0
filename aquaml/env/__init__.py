"""Environments: the ``RLBaseEnv`` contract, the Gymnasium adapter and the checked driver."""
from aquaml.env.base import ActionSpace, ActionUnits, RLBaseEnv
from aquaml.env.gym_env import GymnasiumEnv, action_metadata
from aquaml.env.driver import EnvContractError, EnvDriver, StepResult, env_factory, make_env
from aquaml.env.pomdp import PositionOnlyEnv, register as _register_pomdp
from aquaml.env.learned_reward import LearnedReward, RewardModel

_register_pomdp()  # PendulumNoVel-v1 and CartPoleNoVel-v1 become Gymnasium ids

__all__ = ["ActionSpace", "ActionUnits", "RLBaseEnv", "GymnasiumEnv", "EnvDriver", "EnvContractError", "StepResult",
           "make_env", "env_factory", "action_metadata", "PositionOnlyEnv", "LearnedReward", "RewardModel"]
