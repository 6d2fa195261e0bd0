"""Models: the contract check, Keras-as-pure-function wrapper, optimizers, distributions."""
from aquaml.model.contract import ModelContractError, ModelSpec, build_actor, build_critic, build_model
from aquaml.model.defaults import MLPActor, MLPCritic
from aquaml.model.functional import ModelFunction
from aquaml.model.optimizers import make_optimizer
from aquaml.model.jax_setup import use_compilation_cache, use_unrolled_threefry

use_unrolled_threefry()
use_compilation_cache()

__all__ = ["ModelContractError", "ModelSpec", "build_actor", "build_critic", "build_model", "MLPActor", "MLPCritic", "ModelFunction", "make_optimizer"]
