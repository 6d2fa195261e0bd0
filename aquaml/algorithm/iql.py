"""Implicit Q-Learning (Kostrikov et al. 2021): offline RL without querying unseen actions.

Per gradient step, on observations standardised with the dataset's statistics and (by default,
``normalize_rewards``) rewards scaled by ``1000 / (max episode return - min episode return)`` over
the dataset's episodes, as Kostrikov et al.'s code does for locomotion data (with temperature 3
on raw locomotion rewards, whose advantages span hundreds, most weights would sit at the clip):

1. value ``V(s)``: expectile regression towards ``min(Q1', Q2')(s, a)`` of the target
   critics, ``loss = mean |tau - 1(u < 0)| u^2`` with ``u = Q'(s, a) - V(s)``;
2. critics: ``Q_i(s, a) -> r + gamma (1 - terminated) V(s')`` (truncation bootstraps);
3. actor: advantage-weighted regression, ``loss = -mean min(exp(beta (Q'(s, a) - V(s))), w_max)
   log pi(a | s)`` with a Gaussian around ``tanh(mean)``;
4. Polyak averaging of the target critics.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.off_policy import ScannedUpdates, TwinCritics
from aquaml.algorithm.offline import OfflineAlgorithm
from aquaml.algorithm.builtin_parameters import IQLParameters
from aquaml.env.base import ActionSpace
from aquaml.model.contract import ModelSpec
from aquaml.model.policy import BoundedGaussianPolicy


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """``mean |expectile - 1(diff < 0)| diff^2``: asymmetric least squares."""
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return jnp.mean(weight * diff ** 2)


def episode_returns(transitions: Mapping[str, np.ndarray]) -> np.ndarray:
    """Undiscounted return of each episode of flat transitions laid end to end. An episode ends
    at a step flagged ``terminated`` or ``truncated``, where the next row's observation differs
    from this row's next observation (the reference's test, for data without end flags), and at
    the last row."""
    reward = np.asarray(transitions["reward"], np.float64)
    n = len(reward)
    ends = np.asarray(transitions["terminated"], bool) | np.asarray(transitions["truncated"], bool)
    for key in transitions:
        if key.startswith("next_obs/") and f"obs/{key[len('next_obs/'):]}" in transitions:
            nxt = np.asarray(transitions[key]).reshape(n, -1)
            obs = np.asarray(transitions[f"obs/{key[len('next_obs/'):]}"]).reshape(n, -1)
            ends[:-1] |= np.linalg.norm(obs[1:].astype(np.float64) - nxt[:-1], axis=1) > 1e-6
    ends[-1] = True
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    return np.add.reduceat(reward, starts)


def reward_scale(transitions: Mapping[str, np.ndarray]) -> float:
    """``1000 / (max episode return - min episode return)`` (1 when every return is the same)."""
    returns = episode_returns(transitions)
    spread = float(returns.max() - returns.min())
    if not np.isfinite(spread) or spread <= 0:
        warnings.warn(f"iql: normalize_rewards needs episodes of different returns, but all {len(returns)} "
                      f"episode(s) of the dataset return {returns[0]:.6g}; training on the raw rewards",
                      stacklevel=3)
        return 1.0
    return 1000.0 / spread


def awr_weights(advantage: jax.Array, temperature: float, max_weight: float) -> jax.Array:
    """``min(exp(temperature * advantage), max_weight)``."""
    return jnp.minimum(jnp.exp(temperature * advantage), max_weight)


class IQLState(NamedTuple):
    actor: dict
    critics: tuple
    targets: tuple
    value: Any
    actor_opt: Any
    critic_opt: tuple
    value_opt: Any
    key: jax.Array


class ImplicitQ(ScannedUpdates):
    """IQL's update on the raw state (see :class:`IQL`)."""

    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2", "vf")
    input_kinds: ClassVar[dict[str, str]] = {"vf": "value"}  #: a state-value model: no action
    critic_uses_action: ClassVar[bool] = True
    discrete_actions: ClassVar[bool] = False
    default_log_std_head: ClassVar[bool] = False

    def __init__(self, params: IQLParameters, models: Mapping[str, ModelSpec], action_space: ActionSpace) -> None:
        self.params, self.models = params, dict(models)
        if models["actor"].state_outputs:
            raise ValueError("IQL trains feed-forward actors; clone a recurrent actor with bc")
        self.policy = BoundedGaussianPolicy(models["actor"], params.log_std_init)
        self.critics = TwinCritics([models["qf1"], models["qf2"]], self.policy.action_shape)
        self._compile()

    def init_state(self, key: jax.Array) -> IQLState:
        actor = self.policy.init_params()
        critics, critic_opt = self.critics.init()
        value = self.models["vf"].fn.init_params()
        return IQLState(actor, critics, jax.tree_util.tree_map(jnp.array, critics), value,
                        self.models["actor"].optimizer.init(actor), critic_opt,
                        self.models["vf"].optimizer.init(value), key)

    def actor_params(self, state: IQLState):
        return state.actor

    def model_params(self, state: IQLState) -> dict:
        return {"actor": state.actor["net"], "qf1": state.critics[0], "qf2": state.critics[1], "vf": state.value}

    def _v(self, params, obs) -> jax.Array:
        v = self.models["vf"].fn.apply(params, obs)
        return v.reshape(v.shape[0])

    def _update_one(self, state: IQLState, batch) -> tuple[IQLState, dict]:
        p = self.params
        obs, n = batch["obs"], batch["reward"].shape[0]
        action = batch["action"].reshape(n, -1)
        target_q = jax.lax.stop_gradient(self.critics.min_q(state.targets, obs, action))

        def value_loss(value):
            v = self._v(value, obs)
            return expectile_loss(target_q - v, p.expectile), v

        (v_loss, v), grads = jax.value_and_grad(value_loss, has_aux=True)(state.value)
        updates, value_opt = self.models["vf"].optimizer.update(grads, state.value_opt, state.value)
        value = optax.apply_updates(state.value, updates)

        next_v = self._v(value, batch["next_obs"])
        y = jax.lax.stop_gradient(batch["reward"] + p.discount * (1.0 - batch["terminated"]) * next_v)
        critics, critic_opt, q_loss, q_mean = self.critics.update(state.critics, state.critic_opt, obs, action, y)

        weights = jax.lax.stop_gradient(awr_weights(target_q - v, p.temperature, p.max_weight))

        def actor_loss(actor):
            outputs = self.policy.outputs(actor["net"], obs)
            return -jnp.mean(weights * self.policy.log_prob(actor, outputs, action))

        pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor)
        updates, actor_opt = self.models["actor"].optimizer.update(grads, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, updates)
        targets = optax.incremental_update(critics, state.targets, p.tau)
        new_state = IQLState(actor, critics, targets, value, actor_opt, critic_opt, value_opt, state.key)
        return new_state, {"v_loss": v_loss, "q_loss": q_loss, "actor_loss": pi_loss, "q_mean": q_mean,
                           "v_mean": jnp.mean(v), "adv_weight": jnp.mean(weights)}


class IQL(OfflineAlgorithm, ImplicitQ):
    """IQL from a dataset (``aquaml train iql ENV --set dataset=PATH``): roles ``actor``,
    ``qf1``, ``qf2`` (read the action) and ``vf`` (does not)."""

    name: ClassVar[str] = "iql"
    Parameters: ClassVar[type] = IQLParameters

    def observe_dataset(self, transitions: Mapping[str, np.ndarray]) -> None:
        """The observation statistics, and the reward scale of ``normalize_rewards`` (1 when off)."""
        super().observe_dataset(transitions)
        self.reward_scale = reward_scale(transitions) if self.params.normalize_rewards else 1.0

    def prepare_batches(self, flat: Mapping[str, np.ndarray]) -> dict:
        """The training batches, rewards multiplied by the dataset's reward scale."""
        scale = getattr(self, "reward_scale", None)
        if scale is None:
            raise RuntimeError("iql: observe_dataset(transitions) must see the dataset before batches are prepared "
                               "(it fixes the reward scale)")
        batches = super().prepare_batches(flat)
        batches["reward"] = (batches["reward"] * np.float32(scale)).astype(np.float32)
        return batches
