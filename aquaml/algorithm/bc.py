"""Behaviour cloning: fit the actor to a dataset's actions by maximum likelihood.

Continuous actions: ``loss = -log N(a; tanh(mean(s)), std)`` (``loss='gaussian'``, a learned
std, state-dependent when the actor outputs ``'log_std'``) or ``|tanh(mean(s)) - a|^2``
(``loss='mse'``). Discrete actions: cross-entropy of the actor's logits. A recurrent actor
(step form: its state is an input it also outputs) trains over windows of
``sequence_length`` steps that never cross an episode end, starting from the state stored
in the dataset when it holds one (zeros otherwise) after ``burn_in`` warm-up steps.
"""
from __future__ import annotations

import functools
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from aquaml.algorithm.off_policy import ScannedUpdates
from aquaml.algorithm.offline import OfflineAlgorithm
from aquaml.algorithm.builtin_parameters import BCParameters
from aquaml.env.base import ActionSpace
from aquaml.model.contract import ModelSpec
from aquaml.model.distributions import categorical_log_prob
from aquaml.model.policy import BoundedGaussianPolicy, CategoricalPolicy
from aquaml.model.recurrent import episode_starts, unroll, weighted_mean
from aquaml.model.recurrent import flat as seq_flat

class BCState(NamedTuple):
    actor: dict
    actor_opt: Any
    key: jax.Array


def sequence_views(spec: ModelSpec, net_params, batch, burn_in: int):
    """A recurrent actor's outputs over ``(B, L)`` windows, flattened to ``B * L`` steps, with
    the per-step loss weights (0 on padding and burn-in) and the flattened step fields."""
    B, L = batch["reward"].shape
    starts = episode_starts(batch["terminated"], batch["truncated"])
    weights = (batch["mask"] * (jnp.arange(L) >= burn_in)).reshape(-1)
    outputs = seq_flat(unroll(spec, net_params, batch["obs"], starts, burn_in), B * L)
    steps = seq_flat({k: v for k, v in batch.items() if k not in ("obs", "next_obs", "mask")}, B * L)
    return outputs, weights, steps


class Cloning(ScannedUpdates):
    """The cloning update on the raw state (see :class:`BC` for the algorithm with its data)."""

    critic_roles: ClassVar[tuple[str, ...]] = ()
    critic_uses_action: ClassVar[bool] = False
    discrete_actions: ClassVar[bool] = True
    default_log_std_head: ClassVar[bool] = False

    def __init__(self, params: BCParameters, models: Mapping[str, ModelSpec], action_space: ActionSpace) -> None:
        self.params, self.models = params, dict(models)
        actor = models["actor"]
        self.discrete = action_space.n is not None
        self.policy = CategoricalPolicy(actor) if self.discrete else BoundedGaussianPolicy(actor, params.log_std_init)
        self.sequence = params.sequence_length
        if self.sequence and not actor.state_outputs:
            raise ValueError(f"sequence training (sequence_length/batch_trajectory) needs a recurrent actor: "
                             f"{type(actor.model).__name__} declares no state outputs")
        if actor.state_outputs and not self.sequence:
            raise ValueError(f"{type(actor.model).__name__} is recurrent (state outputs "
                             f"{sorted(actor.state_outputs)}): set sequence_length (and burn_in) so it is cloned "
                             "over windows of consecutive steps")
        self._compile()

    def init_state(self, key: jax.Array) -> BCState:
        actor = self.policy.init_params()
        return BCState(actor, self.models["actor"].optimizer.init(actor), key)

    def actor_params(self, state: BCState):
        return state.actor

    def model_params(self, state: BCState) -> dict:
        return {"actor": state.actor["net"]}

    def _losses(self, actor, batch) -> tuple[jax.Array, dict]:
        if self.sequence:
            outputs, w, steps = sequence_views(self.models["actor"], actor["net"], batch, self.params.burn_in)
        else:
            outputs, w, steps = self.policy.outputs(actor["net"], batch["obs"]), None, batch
        n = steps["reward"].shape[0]
        w = jnp.ones((n,)) if w is None else w
        wmean = functools.partial(weighted_mean, weights=w)
        if self.discrete:
            logits = self.policy.flat_mean(outputs)
            action = steps["action"].reshape(n)
            loss = -wmean(categorical_log_prob(logits, action))
            return loss, {"bc_loss": loss, "accuracy": wmean(jnp.argmax(logits, -1) == action)}
        action = steps["action"].reshape(n, -1)
        mean, log_std = self.policy.dist(actor, outputs)
        mse = wmean(jnp.sum((mean - action) ** 2, axis=-1))
        loss = mse if self.params.loss == "mse" else -wmean(self.policy.log_prob(actor, outputs, action))
        return loss, {"bc_loss": loss, "action_mse": mse, "log_std": jnp.mean(log_std)}

    def _update_one(self, state: BCState, batch) -> tuple[BCState, dict]:
        (_, metrics), grads = jax.value_and_grad(self._losses, has_aux=True)(state.actor, batch)
        updates, opt = self.models["actor"].optimizer.update(grads, state.actor_opt, state.actor)
        return BCState(optax.apply_updates(state.actor, updates), opt, state.key), metrics


class BC(OfflineAlgorithm, Cloning):
    """Behaviour cloning from a dataset (``aquaml train bc ENV --set dataset=PATH``)."""

    name: ClassVar[str] = "bc"
    Parameters: ClassVar[type] = BCParameters
