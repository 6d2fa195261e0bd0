"""Soft Actor-Critic (Haarnoja et al. 2018) with twin critics and automatic temperature.

Everything that touches parameters is a pure function of a :class:`SACState`; the
``update_times`` gradient steps of an epoch are one compiled call (``lax.scan`` over
pre-sampled batches).
"""
from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from aquaml.algorithm.off_policy import OffPolicyAlgorithm
from aquaml.algorithm.builtin_parameters import SACParameters
from aquaml.model.contract import ModelSpec
from aquaml.model.distributions import squashed_gaussian_log_prob
from aquaml.model.optimizers import make_optimizer
from aquaml.model.policy import SquashedGaussianPolicy
from aquaml.model.recurrent import episode_starts, unroll, weighted_mean
from aquaml.model.recurrent import flat as seq_flat


ACTION_EDGE = 1.0 - 1e-6  # where log_prob_of moves actions at the bounds +-1 for atanh


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


class SAC(OffPolicyAlgorithm):
    """SAC on checked models: ``actor`` (squashed Gaussian) and critics ``qf1``, ``qf2``."""

    name: ClassVar[str] = "sac"
    Parameters: ClassVar[type] = SACParameters

    def __init__(self, params: SACParameters, models: Mapping[str, ModelSpec], action_space=None) -> None:
        super().__init__(params, models, SquashedGaussianPolicy(models["actor"]))
        self.sequence = params.sequence_length
        if self.sequence and not any(spec.state_outputs for spec in models.values()):
            raise ValueError(f"sequence training (sequence_length/batch_trajectory) needs a recurrent actor (or, in "
                             f"adversarial imitation, discriminator): {type(models['actor'].model).__name__} declares "
                             "no state outputs (an output name that is also in its input_name)")
        self.target_entropy = (float(params.target_entropy) if params.target_entropy is not None
                               else -float(self.policy.action_dim))
        self.alpha_tx = make_optimizer("Adam", params.alpha_learning_rate, owner="alpha")

    def init_state(self, key: jax.Array) -> SACState:
        actor = self.policy.init_params()
        critics, critic_opt = self.critics.init()
        log_alpha = jnp.asarray(math.log(self.params.alpha), jnp.float32)
        return SACState(
            actor=actor,
            critics=critics,
            targets=jax.tree_util.tree_map(jnp.array, critics),
            log_alpha=log_alpha,
            actor_opt=self.models["actor"].optimizer.init(actor),
            critic_opt=critic_opt,
            alpha_opt=self.alpha_tx.init(log_alpha),
            key=key,
        )

    def log_prob_of(self, state: SACState, obs, action) -> jax.Array:
        """``log pi(a|s)`` of given actions under the current actor, without gradient (actions
        at the bounds +-1 are moved just inside, where ``atanh`` is finite)."""
        actor = jax.lax.stop_gradient(state.actor)
        n = action.shape[0]
        mean, log_std = self.policy.dist(actor, self.policy.outputs(actor["net"], obs))
        u = jnp.arctanh(jnp.clip(action.reshape(n, -1), -ACTION_EDGE, ACTION_EDGE))
        return squashed_gaussian_log_prob(u, mean, log_std)

    # -- learning ---------------------------------------------------------------------
    def _views(self, state: SACState, batch):
        """Per-step data, loss weights, and the actor's outputs (a function of its parameters)
        at ``obs`` and at ``next_obs``; a sequence batch is unrolled, then flattened."""
        if not self.sequence:
            weights = jnp.ones_like(batch["reward"])
            outputs = lambda actor: self.policy.outputs(actor["net"], batch["obs"])  # noqa: E731
            next_outputs = self.policy.outputs(state.actor["net"], batch["next_obs"])
            return batch, weights, outputs, next_outputs
        p, spec = self.params, self.models["actor"]
        B, L = batch["reward"].shape
        starts = episode_starts(batch["terminated"], batch["truncated"])
        weights = (batch["mask"] * (jnp.arange(L) >= p.burn_in)).reshape(-1)  # padding and burn-in: no loss
        unrolled = lambda actor: unroll(spec, actor["net"], batch["obs"], starts, p.burn_in)  # noqa: E731
        outputs = lambda actor: seq_flat(unrolled(actor), B * L)  # noqa: E731
        steps = seq_flat({k: v for k, v in batch.items() if k != "mask"}, B * L)
        # at next_obs the actor continues from the state it reached after each step
        reached = jax.lax.stop_gradient(outputs(state.actor))
        next_inputs = {**steps["next_obs"], **{k: reached[k] for k in spec.state_outputs}}
        next_outputs = self.policy.outputs(state.actor["net"], next_inputs)
        return steps, weights, outputs, next_outputs

    def _update_one(self, state: SACState, batch) -> tuple[SACState, dict]:
        p = self.params
        key, k_next, k_pi = jax.random.split(state.key, 3)
        alpha = jnp.exp(state.log_alpha)
        batch, w, actor_outputs, next_outputs = self._views(state, batch)
        wmean = functools.partial(weighted_mean, weights=w)

        next_obs = batch["next_obs"]
        next_action, next_log_prob, _ = self.policy.sample(state.actor, None, k_next, next_outputs)
        target = jax.lax.stop_gradient(soft_td_target(
            batch["reward"], batch["terminated"], self.critics.q(0, state.targets[0], next_obs, next_action),
            self.critics.q(1, state.targets[1], next_obs, next_action), next_log_prob, alpha, p.discount))
        action = batch["action"].reshape(target.shape[0], -1)
        critics, critic_opt, q_loss, q_mean = self.critics.update(
            state.critics, state.critic_opt, batch["obs"], action, target, w)
        targets = optax.incremental_update(critics, state.targets, p.tau)

        def actor_loss(actor):
            new_action, log_prob, _ = self.policy.sample(actor, None, k_pi, actor_outputs(actor))
            q = self.critics.min_q(critics, batch["obs"], new_action)
            return wmean(alpha * log_prob - q), log_prob

        (pi_loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor)
        updates, actor_opt = self.models["actor"].optimizer.update(grads, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, updates)

        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        entropy_gap = jax.lax.stop_gradient(log_prob + self.target_entropy)
        alpha_loss = -wmean(state.log_alpha * entropy_gap)
        if p.auto_alpha:
            grad = -wmean(entropy_gap)
            updates, alpha_opt = self.alpha_tx.update(grad, state.alpha_opt, state.log_alpha)
            log_alpha = optax.apply_updates(state.log_alpha, updates)

        new_state = SACState(actor, critics, targets, log_alpha, actor_opt, critic_opt, alpha_opt, key)
        metrics = {"q_loss": q_loss, "actor_loss": pi_loss, "alpha_loss": alpha_loss, "alpha": alpha,
                   "entropy": -wmean(log_prob), "q_mean": q_mean}
        return new_state, metrics


SAC2 = SAC
