"""Algorithms: each a parameter dataclass plus pure, jitted update functions.

:class:`~aquaml.algorithm.interface.Algorithm` states what the training loop needs from one;
``docs/new_algorithm.md`` writes a new one outside the package. The names below load their
modules on first use: the parameter classes and the registry's names need no JAX, so the
command line checks its arguments before JAX loads.
"""
from importlib import import_module

_EXPORTS = {
    **dict.fromkeys(("Parameters", "LoopParameters", "OffPolicyParameters", "OnPolicyParameters", "OfflineParameters",
                     "SequenceParameters"), "parameters"),
    **dict.fromkeys(("SACParameters", "TD3Parameters", "PPOParameters", "BCParameters", "TD3BCParameters",
                     "IQLParameters", "GAILParameters", "GAILPPOParameters", "AIRLParameters", "AIRLPPOParameters",
                     "AMPParameters", "DAggerParameters", "VAEParameters"), "builtin_parameters"),
    "Algorithm": "interface",
    **dict.fromkeys(("SAC", "SAC2", "SAC2_parameter", "SACState", "soft_td_target"), "sac"),
    **dict.fromkeys(("TD3", "TD3State", "td3_target"), "td3"),
    "gae": "on_policy",
    **dict.fromkeys(("PPO", "PPO_parameter", "PPOState"), "ppo"),
    "BC": "bc", "TD3BC": "td3bc", "IQL": "iql", "GAIL": "gail", "GAILPPO": "gail", "AIRL": "airl",
    "AIRLPPO": "airl", "AMP": "amp", "DAgger": "dagger", "VAE": "vae",
}
__all__ = [*_EXPORTS, "ALGORITHMS"]


def __getattr__(name: str):
    if name == "ALGORITHMS":  #: CLI name -> built-in algorithm class (aquaml.algorithm.registry for user algorithms)
        from aquaml.algorithm.registry import builtin_algorithms

        globals()[name] = builtin_algorithms()
        return globals()[name]
    if name in _EXPORTS:
        return getattr(import_module(f"aquaml.algorithm.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'aquaml.algorithm' has no attribute {name!r}")
