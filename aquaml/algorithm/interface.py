"""What the training loop needs from an algorithm: the :class:`Algorithm` protocol.

An algorithm is a class with a parameter dataclass and pure, jitted functions of a training
*state* (any pytree: parameters, optimizer states, keys). The loop never looks inside the
state: it asks the algorithm to act, to update, and which parameters are Keras models (to
save them as weight files). ``docs/new_algorithm.md`` builds one from scratch.

Data reaches ``update`` through a *feeder* (:mod:`aquaml.algorithm.feeders`) the algorithm names
with ``feeder = ...`` or, for a built-in one, ``kind = ...``:

* ``'off_policy'`` (:class:`~aquaml.algorithm.feeders.ReplayFeeder`): transitions go to a replay
  buffer; each epoch the feeder samples ``update_times`` batches of ``batch_size`` (or sequence
  windows when the parameters set ``sequence_length``), passes them through ``prepare_batches``
  and calls ``update`` once with all of them stacked on a leading axis.
* ``'on_policy'`` (``RolloutFeeder``): each epoch's rollout, shaped ``(steps_per_env, n_envs, ...)``,
  goes through ``prepare_rollout`` to ``update``.
* ``'offline'`` (``DatasetFeeder``): no environment steps; ``observe_dataset(transitions)`` sees the
  dataset's transitions once, then each epoch ``update_times`` batches drawn from them go through
  ``prepare_batches`` to ``update`` (:mod:`aquaml.algorithm.offline`).
* ``'adversarial'`` and ``'adversarial_rollouts'``: as ``'off_policy'`` and ``'on_policy'``,
  with batches of the expert dataset beside the agent's (:mod:`aquaml.algorithm.adversarial`).
  DAgger's feeder (expert-labelled rounds) and the VAE's (dataset fields, no environment) are
  set with ``feeder =`` in their modules.

A feeder declares what the run must provide (environment steps, a dataset, an expert) and which
members of the algorithm it calls; :func:`check_algorithm` checks all of it before anything is
built.

A batch is a nested dict: ``obs`` and ``next_obs`` (dicts of named observations, the actor's
state outputs included), ``action``, ``reward``, ``terminated``, ``truncated`` (float32; a
truncation is never a termination), ``extras`` (what ``act`` returned besides the action),
and for sequence windows ``mask`` (1 on real steps, 0 on padding).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

import jax
import numpy as np

from aquaml.algorithm.feeders import Feeder, feeder_of
from aquaml.env.base import ActionSpace
from aquaml.model.contract import ModelSpec

#: ``(shape per environment, dtype)`` of a recorded field
Field = tuple[tuple[int, ...], np.dtype]


@runtime_checkable
class Algorithm(Protocol):
    """Everything :class:`aquaml.starter.RLTaskStarter` and the loop use of an algorithm."""

    #: short name: the CLI's ``aquaml train NAME``, run folder names, ``config.json``
    name: ClassVar[str]
    #: the parameter dataclass, a subclass of :class:`aquaml.algorithm.LoopParameters`
    Parameters: ClassVar[type]
    #: the :class:`~aquaml.algorithm.feeders.Feeder` subclass between data and ``update``; or instead
    #: ``kind``: ``'off_policy'`` (replay buffer), ``'on_policy'`` (the rollout just collected),
    #: ``'offline'`` (a dataset) or one of the imitation kinds above
    feeder: ClassVar[type[Feeder]]
    #: model roles besides ``'actor'`` (``model_class_dict`` keys), e.g. ``('qf1', 'qf2')``
    critic_roles: ClassVar[tuple[str, ...]]
    #: default critics also read the ``'action'``
    critic_uses_action: ClassVar[bool]
    #: discrete action spaces are supported
    discrete_actions: ClassVar[bool]
    #: the default actor gets a state-dependent log-std output
    default_log_std_head: ClassVar[bool]

    def __init__(self, params: Any, models: Mapping[str, ModelSpec], action_space: ActionSpace) -> None:
        """Build from checked models (``ModelSpec`` per role) and the environment's action space."""

    @property
    def action_field(self) -> Field:
        """Shape and dtype of one environment's ``'action'``."""

    @property
    def extra_fields(self) -> Mapping[str, Field]:
        """What ``act`` returns besides actions and states (e.g. log-probabilities), recorded per step."""

    def init_state(self, key: jax.Array) -> Any:
        """The initial training state (a pytree of arrays; saved and restored exactly)."""

    def act(self, actor_params: Any, obs: Mapping[str, jax.Array], key: jax.Array,
            deterministic: bool = False) -> tuple[dict, dict, jax.Array]:
        """Jitted: ``(action_dict, extras, new_key)`` for a batch of environments.

        ``action_dict`` holds ``'action'`` and the actor's state outputs (hidden states).
        """

    def actor_params(self, state: Any) -> Any:
        """What ``act`` needs from the state (e.g. actor parameters and observation statistics)."""

    def model_params(self, state: Any) -> dict:
        """``{role: keras parameter list}``: saved as ``models/<role>.weights.h5``."""

    def random_action(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random actions for warm-up steps (called when the feeder asks for warm-up steps)."""

    def update(self, state: Any, batches: Any) -> tuple[Any, dict]:
        """Jitted: the epoch's gradient steps; returns the new state and scalar metrics to log."""


#: what every algorithm that acts in environments defines on its class
CLASS_MEMBERS = ("name", "Parameters", "critic_roles", "critic_uses_action", "discrete_actions",
                 "default_log_std_head", "init_state", "actor_params", "model_params")
#: what its ``__init__`` may set per instance instead (``act`` and ``update`` are often jitted there)
INSTANCE_MEMBERS = ("act", "update", "action_field", "extra_fields")
#: what a generative model of dataset fields (no environment, e.g. the VAE) defines
GENERATIVE_MEMBERS = ("name", "Parameters", "roles", "init_state", "model_params")


def _lacking(owner, names) -> list[str]:
    return [name for name in names if not hasattr(owner, name)]


def check_algorithm(cls) -> None:
    """Raise a ``TypeError`` naming every member a user's algorithm class lacks, before anything is built."""
    if not isinstance(cls, type):
        raise TypeError(f"algo must be an algorithm class, got {type(cls).__name__}")
    if not hasattr(cls, "feeder") and not hasattr(cls, "kind"):
        missing = [*_lacking(cls, CLASS_MEMBERS), "kind (or feeder)"]
        raise TypeError(f"{cls.__name__} is not an AquaML algorithm: it lacks {', '.join(missing)} "
                        "(see aquaml.algorithm.interface.Algorithm and docs/new_algorithm.md)")
    feeder = feeder_of(cls)
    members = CLASS_MEMBERS if feeder.needs_env else GENERATIVE_MEMBERS
    missing = _lacking(cls, (*members, *(("random_action",) if feeder.steps_envs else ()), *feeder.requires))
    if missing:
        raise TypeError(f"{cls.__name__} is not an AquaML algorithm: it lacks {', '.join(missing)} (its feeder "
                        f"{feeder.__name__} needs them; see aquaml.algorithm.interface.Algorithm and "
                        "docs/new_algorithm.md)")


#: parameter fields the training loop, the evaluation and the default models read
LOOP_FIELDS = ("n_epochs", "n_envs", "overlap", "display_interval", "calculate_episodes", "store_model_times", "seed",
               "episode_length", "steps_per_env", "total_steps", "hidden_sizes", "learning_rate", "lstm_size")
#: those a generative model's run reads (no environment, no evaluation episodes)
GENERATIVE_FIELDS = ("n_epochs", "overlap", "display_interval", "store_model_times", "seed", "total_steps")


def check_parameters(algo: type, params):
    """``params`` (None: the defaults) as an instance of ``algo.Parameters``, holding every field
    the loop and the algorithm's feeder read; a ``TypeError`` names what is wrong."""
    check_algorithm(algo)
    params = params if params is not None else algo.Parameters()
    if not isinstance(params, algo.Parameters):
        raise TypeError(f"algo_hyperparameter is a {type(params).__name__}; {algo.__name__} needs "
                        f"{algo.Parameters.__name__} (e.g. SAC2_parameter(...))")
    feeder = feeder_of(algo)
    fields = dict.fromkeys((*(LOOP_FIELDS if feeder.needs_env else GENERATIVE_FIELDS), *feeder.reads_parameters))
    missing = _lacking(params, fields)
    if missing:
        raise TypeError(f"{type(params).__name__} lacks {', '.join(missing)}, which the training loop or "
                        f"{feeder.__name__} reads: subclass one of aquaml.algorithm's parameter base classes "
                        "(LoopParameters, OnPolicyParameters, OffPolicyParameters, OfflineParameters)")
    return params


def check_instance(algo) -> None:
    """After construction: what ``__init__`` was to set exists (``act``, ``update``, the feeder's needs)."""
    feeder = feeder_of(type(algo))
    missing = _lacking(algo, (*(INSTANCE_MEMBERS if feeder.needs_env else ("update",)), *feeder.requires_instance))
    if missing:
        raise TypeError(f"{type(algo).__name__} is not an AquaML algorithm: it lacks {', '.join(missing)} "
                        "(see aquaml.algorithm.interface.Algorithm and docs/new_algorithm.md)")
