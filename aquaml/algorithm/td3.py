"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed actor updates.

DDPG is the configuration ``policy_delay=1, policy_noise=0`` (with twin critics kept).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from aquaml.algorithm.off_policy import OffPolicyAlgorithm
from aquaml.algorithm.builtin_parameters import TD3Parameters
from aquaml.model.contract import ModelSpec
from aquaml.model.policy import DeterministicPolicy


def td3_target(reward, terminated, next_q1, next_q2, discount):
    """``r + gamma * (1 - terminated) * min(Q1', Q2')``; truncation still bootstraps."""
    return reward + discount * (1.0 - terminated) * jnp.minimum(next_q1, next_q2)


class TD3State(NamedTuple):
    actor: dict
    actor_target: dict
    critics: tuple
    targets: tuple
    actor_opt: Any
    critic_opt: tuple
    step: jax.Array  # gradient steps taken, for the actor delay
    key: jax.Array


class TD3(OffPolicyAlgorithm):
    """TD3 on checked models: a deterministic ``actor`` and critics ``qf1``, ``qf2``."""

    name: ClassVar[str] = "td3"
    Parameters: ClassVar[type] = TD3Parameters
    default_log_std_head: ClassVar[bool] = False

    def __init__(self, params: TD3Parameters, models: Mapping[str, ModelSpec], action_space=None) -> None:
        super().__init__(params, models, DeterministicPolicy(models["actor"], params.exploration_noise))

    def init_state(self, key: jax.Array) -> TD3State:
        actor = self.policy.init_params()
        critics, critic_opt = self.critics.init()
        copy = lambda tree: jax.tree_util.tree_map(jnp.array, tree)  # noqa: E731
        return TD3State(actor, copy(actor), critics, copy(critics), self.models["actor"].optimizer.init(actor),
                        critic_opt, jnp.zeros((), jnp.int32), key)

    def _update_one(self, state: TD3State, batch) -> tuple[TD3State, dict]:
        p = self.params
        key, k_noise = jax.random.split(state.key)
        next_obs = batch["next_obs"]
        next_action, _ = self.policy.action(state.actor_target, next_obs)
        noise = jnp.clip(p.policy_noise * jax.random.normal(k_noise, next_action.shape), -p.noise_clip, p.noise_clip)
        next_action = jnp.clip(next_action + noise, -1.0, 1.0)
        target = jax.lax.stop_gradient(td3_target(
            batch["reward"], batch["terminated"], self.critics.q(0, state.targets[0], next_obs, next_action),
            self.critics.q(1, state.targets[1], next_obs, next_action), p.discount))
        action = batch["action"].reshape(target.shape[0], -1)
        critics, critic_opt, q_loss, q_mean = self.critics.update(
            state.critics, state.critic_opt, batch["obs"], action, target)

        def delayed(_):
            loss, grads = jax.value_and_grad(self._actor_loss)(state.actor, critics, batch)
            updates, opt = self.models["actor"].optimizer.update(grads, state.actor_opt, state.actor)
            actor = optax.apply_updates(state.actor, updates)
            return (actor, opt, optax.incremental_update(actor, state.actor_target, p.tau),
                    optax.incremental_update(critics, state.targets, p.tau), loss)

        def skip(_):
            return state.actor, state.actor_opt, state.actor_target, state.targets, jnp.float32(jnp.nan)

        actor, actor_opt, actor_target, targets, pi_loss = jax.lax.cond(
            state.step % p.policy_delay == 0, delayed, skip, None)
        new_state = TD3State(actor, actor_target, critics, targets, actor_opt, critic_opt, state.step + 1, key)
        return new_state, {"q_loss": q_loss, "actor_loss": pi_loss, "q_mean": q_mean}

    def _actor_loss(self, actor, critics, batch) -> jax.Array:
        """Deterministic policy gradient: maximise ``Q1(s, pi(s))``."""
        return -jnp.mean(self.critics.q(0, critics[0], batch["obs"], self.policy.action(actor, batch["obs"])[0]))

    def _update_many(self, state, batches):
        state, metrics = jax.lax.scan(self._update_one, state, batches)
        # the actor loss exists only on delayed steps: average those
        metrics = {k: (jnp.nanmean(v) if k == "actor_loss" else jnp.mean(v)) for k, v in metrics.items()}
        return state, metrics
