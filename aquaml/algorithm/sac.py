"""Soft Actor-Critic (Haarnoja et al. 2018) with twin critics and automatic temperature.

Everything that touches parameters is a pure function of a :class:`SACState`; the
``update_times`` gradient steps of an epoch are one compiled call (``lax.scan`` over
pre-sampled batches).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.parameters import Parameters, check_positive
from aquaml.model.contract import ModelSpec
from aquaml.model.policy import SquashedGaussianPolicy


@dataclass
class SACParameters(Parameters):
    """SAC hyperparameters; the seed's names (``SAC2_parameter``) are accepted as they are.

    An *epoch* is ``update_interval`` environment steps followed by ``update_times``
    gradient steps; training runs ``n_epochs`` epochs.
    """

    ALIASES: ClassVar[Mapping[str, str]] = {"epoch_length": "episode_length"}

    episode_length: int | None = None  #: step limit per episode (a truncation); None: the env's own
    n_epochs: int = 400  #: epochs to train
    update_interval: int = 50  #: env steps per epoch
    update_times: int | None = None  #: gradient steps per epoch; None: update_interval
    batch_size: int = 256
    discount: float = 0.99
    tau: float = 0.005  #: Polyak factor of the target critics
    alpha: float = 0.2  #: initial entropy temperature
    auto_alpha: bool = True  #: tune the temperature towards ``target_entropy``
    target_entropy: float | None = None  #: None: minus the action dimension
    alpha_learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    mini_buffer_size: int = 1000  #: random-action transitions collected before learning
    display_interval: int = 20  #: epochs between evaluations, log rows and console tables
    calculate_episodes: int = 5  #: deterministic episodes per evaluation
    store_model_times: int = 5  #: displays between checkpoints (one is always written at the end)
    save_buffer: bool = True  #: checkpoint the replay buffer too (needed for an exact resume)
    seed: int = 0
    hidden_sizes: tuple[int, ...] = (64, 64)  #: default models only
    learning_rate: float = 1e-3  #: default models only

    def __post_init__(self) -> None:
        if self.update_times is None:
            self.update_times = self.update_interval
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        check_positive(self, "n_epochs", "update_interval", "update_times", "batch_size", "buffer_size",
                       "display_interval", "calculate_episodes", "store_model_times", "alpha",
                       "alpha_learning_rate", "learning_rate")
        check_positive(self, "episode_length", allow_none=True)
        if not 0 <= self.discount <= 1:
            raise ValueError(f"SACParameters.discount must lie in [0, 1], got {self.discount}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"SACParameters.tau must lie in (0, 1], got {self.tau}")
        if self.mini_buffer_size < 0:
            raise ValueError(f"SACParameters.mini_buffer_size must be >= 0, got {self.mini_buffer_size}")

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.update_interval


def SAC2_parameter(**kwargs: Any) -> SACParameters:
    """The seed's constructor: same names (``epoch_length`` or ``episode_length``, ...)."""
    return SACParameters.from_kwargs(**kwargs)


def soft_td_target(reward, terminated, next_q1, next_q2, next_log_prob, alpha, discount):
    """``r + gamma * (1 - terminated) * (min(Q1', Q2') - alpha * log pi(a'|s'))``.

    Only a true termination stops bootstrapping; a time-limit truncation does not.
    """
    soft_value = jnp.minimum(next_q1, next_q2) - alpha * next_log_prob
    return reward + discount * (1.0 - terminated) * soft_value


class SACState(NamedTuple):
    actor: dict
    critics: tuple  # (qf1 params, qf2 params)
    targets: tuple
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: tuple
    alpha_opt: Any
    key: jax.Array


class SAC:
    """SAC on checked models: ``actor`` (squashed Gaussian) and critics ``qf1``, ``qf2``."""

    name: ClassVar[str] = "sac"
    Parameters: ClassVar[type] = SACParameters
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2")

    def __init__(self, params: SACParameters, models: Mapping[str, ModelSpec]) -> None:
        self.params = params
        self.models = dict(models)
        self.policy = SquashedGaussianPolicy(models["actor"])
        self.critics = (models["qf1"], models["qf2"])
        self.target_entropy = (float(params.target_entropy) if params.target_entropy is not None
                               else -float(self.policy.action_dim))
        self.alpha_tx = optax.adam(params.alpha_learning_rate)
        self.update = jax.jit(self._update_many)
        self.act = jax.jit(self._act, static_argnames="deterministic")

    def init_state(self, key: jax.Array) -> SACState:
        actor = self.policy.init_params()
        critics = tuple(spec.fn.init_params() for spec in self.critics)
        log_alpha = jnp.asarray(math.log(self.params.alpha), jnp.float32)
        return SACState(
            actor=actor,
            critics=critics,
            targets=jax.tree_util.tree_map(jnp.array, critics),
            log_alpha=log_alpha,
            actor_opt=self.models["actor"].optimizer.init(actor),
            critic_opt=tuple(spec.optimizer.init(p) for spec, p in zip(self.critics, critics)),
            alpha_opt=self.alpha_tx.init(log_alpha),
            key=key,
        )

    # -- acting -----------------------------------------------------------------------
    def _act(self, actor_params, obs, key, deterministic: bool = False):
        key, sub = jax.random.split(key)
        return self.policy.act(actor_params, obs, sub, deterministic), key

    # -- learning ---------------------------------------------------------------------
    def _q(self, index: int, params, obs, action) -> jax.Array:
        inputs = {**obs, "action": action.reshape(action.shape[0], *self.policy.action_shape)}
        q = self.critics[index].fn.apply(params, inputs)
        return q.reshape(q.shape[0])

    def _min_q(self, critics, obs, action) -> jax.Array:
        return jnp.minimum(self._q(0, critics[0], obs, action), self._q(1, critics[1], obs, action))

    def _update_one(self, state: SACState, batch) -> tuple[SACState, dict]:
        p = self.params
        key, k_next, k_pi = jax.random.split(state.key, 3)
        alpha = jnp.exp(state.log_alpha)

        next_action, next_log_prob, _ = self.policy.sample(state.actor, batch["next_obs"], k_next)
        next_obs = batch["next_obs"]
        target = jax.lax.stop_gradient(soft_td_target(
            batch["reward"], batch["terminated"], self._q(0, state.targets[0], next_obs, next_action),
            self._q(1, state.targets[1], next_obs, next_action), next_log_prob, alpha, p.discount))
        action = batch["action"].reshape(target.shape[0], -1)

        def critic_loss(critics):
            q1 = self._q(0, critics[0], batch["obs"], action)
            q2 = self._q(1, critics[1], batch["obs"], action)
            return jnp.mean((q1 - target) ** 2) + jnp.mean((q2 - target) ** 2), jnp.mean(q1)

        (q_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(state.critics)
        critics, critic_opt = [], []
        for spec, params, grad, opt in zip(self.critics, state.critics, grads, state.critic_opt):
            updates, opt = spec.optimizer.update(grad, opt, params)
            critics.append(optax.apply_updates(params, updates))
            critic_opt.append(opt)
        critics = tuple(critics)
        targets = optax.incremental_update(critics, state.targets, p.tau)

        def actor_loss(actor):
            new_action, log_prob, _ = self.policy.sample(actor, batch["obs"], k_pi)
            q = self._min_q(critics, batch["obs"], new_action)
            return jnp.mean(alpha * log_prob - q), log_prob

        (pi_loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor)
        updates, actor_opt = self.models["actor"].optimizer.update(grads, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, updates)

        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        entropy_gap = jax.lax.stop_gradient(log_prob + self.target_entropy)
        alpha_loss = -jnp.mean(state.log_alpha * entropy_gap)
        if p.auto_alpha:
            grad = -jnp.mean(entropy_gap)
            updates, alpha_opt = self.alpha_tx.update(grad, state.alpha_opt, state.log_alpha)
            log_alpha = optax.apply_updates(state.log_alpha, updates)

        new_state = SACState(actor, critics, targets, log_alpha, actor_opt, tuple(critic_opt), alpha_opt, key)
        metrics = {"q_loss": q_loss, "actor_loss": pi_loss, "alpha_loss": alpha_loss, "alpha": alpha,
                   "entropy": -jnp.mean(log_prob), "q_mean": q_mean}
        return new_state, metrics

    def _update_many(self, state: SACState, batches) -> tuple[SACState, dict]:
        """``batches`` has a leading axis of ``update_times``; one scanned gradient step each."""
        state, metrics = jax.lax.scan(self._update_one, state, batches)
        return state, jax.tree_util.tree_map(jnp.mean, metrics)

    def prepare_batches(self, flat: Mapping[str, np.ndarray]) -> dict:
        """Nested float32 arrays the update expects, from replay-buffer fields."""
        from aquaml.data.batch import nest

        out = nest(flat)
        out["reward"] = out["reward"].astype(np.float32)
        out["terminated"] = out["terminated"].astype(np.float32)
        out.pop("truncated", None)
        return out

    def actor_params(self, state: SACState) -> dict:
        return state.actor

    def model_params(self, state: SACState) -> dict[str, Any]:
        """Keras-model parameters by role, for saving in Keras' weight format."""
        return {"actor": state.actor["net"], "qf1": state.critics[0], "qf2": state.critics[1]}


SAC2 = SAC
