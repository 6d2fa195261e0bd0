"""A2C (synchronous advantage actor-critic, Mnih et al. 2016) written outside AquaML, in one file.

The guide ``docs/new_algorithm.md`` walks through this file. Train it with

    RLTaskStarter("CartPole-v1", algo=A2C, algo_hyperparameter=A2CParameters(...)).run()

or from the command line, with this folder on the Python path:

    aquaml train a2c:A2C CartPole-v1 --steps 100000
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm import OnPolicyParameters, gae
from aquaml.data.batch import training_batch
from aquaml.model.jax_setup import acting_jit
from aquaml.model.policy import CategoricalPolicy, GaussianPolicy


@dataclass
class A2CParameters(OnPolicyParameters):
    """A2C's settings; the loop's (n_epochs, n_envs, rollout_length, discount, gae_lambda, ...) are inherited."""

    rollout_length: int = 16  #: a shorter rollout than PPO's default: A2C learns once per rollout
    gae_lambda: float = 1.0  #: plain n-step returns, as in the paper
    ent_coef: float = 0.0  #: entropy bonus
    max_grad_norm: float = 0.5


class A2CState(NamedTuple):
    actor: dict
    critic: list
    actor_opt: Any
    critic_opt: Any
    key: jax.Array


def a2c_losses(log_prob, entropy, values, advantages, returns):
    """Policy-gradient loss ``-mean(log pi(a|s) * A)``, value loss ``mean((V - R)^2) / 2`` and mean entropy."""
    policy_loss = -jnp.mean(log_prob * jax.lax.stop_gradient(advantages))
    value_loss = 0.5 * jnp.mean((values - returns) ** 2)
    return policy_loss, value_loss, jnp.mean(entropy)


class A2C:
    """A2C on an ``actor`` (categorical or Gaussian) and a ``critic`` V(s)."""

    # what the starter reads (aquaml.algorithm.interface.Algorithm)
    name: ClassVar[str] = "a2c"
    Parameters: ClassVar[type] = A2CParameters
    kind: ClassVar[str] = "on_policy"  # learns from each rollout as it is collected
    critic_roles: ClassVar[tuple[str, ...]] = ("critic",)
    critic_uses_action: ClassVar[bool] = False  # V(s), not Q(s, a)
    discrete_actions: ClassVar[bool] = True
    default_log_std_head: ClassVar[bool] = False  # a state-independent log-std parameter

    def __init__(self, params: A2CParameters, models, action_space) -> None:
        self.params, self.models = params, models
        discrete = action_space.n is not None
        self.policy = CategoricalPolicy(models["actor"]) if discrete else GaussianPolicy(models["actor"])
        clip = optax.clip_by_global_norm(params.max_grad_norm)
        self.actor_tx = optax.chain(clip, models["actor"].optimizer)  # the model's own optimizer
        self.critic_tx = optax.chain(clip, models["critic"].optimizer)
        self.action_field = ((), np.dtype(np.int64)) if discrete else (self.policy.action_shape, np.dtype(np.float32))
        # what act() returns besides the action: recorded with every step
        self.extra_fields = {"log_prob": ((), np.dtype(np.float32))}
        if not discrete:
            self.extra_fields["raw_action"] = ((self.policy.action_dim,), np.dtype(np.float32))
        self.grad_steps_per_update = 1
        self.act = acting_jit(self._act, static_argnames="deterministic")
        self.update = jax.jit(self._update)

    prepare_rollout = staticmethod(training_batch)

    def init_state(self, key: jax.Array) -> A2CState:
        actor, critic = self.policy.init_params(), self.models["critic"].fn.init_params()
        return A2CState(actor, critic, self.actor_tx.init(actor), self.critic_tx.init(critic), key)

    def actor_params(self, state: A2CState) -> dict:
        return state.actor

    def model_params(self, state: A2CState) -> dict:
        return {"actor": state.actor["net"], "critic": state.critic}

    def random_action(self, rng, n):
        raise RuntimeError("A2C acts with its policy from the first step")

    def _act(self, actor_params, obs, key, deterministic: bool = False):
        key, sub = jax.random.split(key)
        action_dict, extras = self.policy.act(actor_params, obs, sub, deterministic)
        return action_dict, extras, key

    def _value(self, critic, obs):
        v = self.models["critic"].fn.apply(critic, obs)
        return v.reshape(v.shape[0])

    def _update(self, state: A2CState, rollout):
        """One gradient step on a ``(T, N)`` rollout."""
        p = self.params
        T, N = rollout["reward"].shape
        flat = lambda tree: jax.tree_util.tree_map(lambda x: x.reshape(T * N, *x.shape[2:]), tree)  # noqa: E731
        obs, next_obs = flat(rollout["obs"]), flat(rollout["next_obs"])
        values = self._value(state.critic, obs).reshape(T, N)
        next_values = self._value(state.critic, next_obs).reshape(T, N)
        # truncations bootstrap from next_values; terminations do not (gae handles both)
        advantages, returns = gae(rollout["reward"], values, next_values, rollout["terminated"],
                                  rollout["truncated"], p.discount, p.gae_lambda)
        action, extras = flat(rollout["action"]), flat(rollout["extras"])

        def loss(actor, critic):
            outputs = self.policy.outputs(actor["net"], obs)
            log_prob, entropy = self.policy.log_prob_entropy(actor, outputs, action, extras)
            pi_loss, v_loss, ent = a2c_losses(log_prob, entropy, self._value(critic, obs),
                                              advantages.reshape(-1), jax.lax.stop_gradient(returns).reshape(-1))
            return pi_loss - p.ent_coef * ent + v_loss, (pi_loss, v_loss, ent)

        (_, (pi_loss, v_loss, ent)), (g_actor, g_critic) = jax.value_and_grad(loss, (0, 1), has_aux=True)(
            state.actor, state.critic)
        updates, actor_opt = self.actor_tx.update(g_actor, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, updates)
        updates, critic_opt = self.critic_tx.update(g_critic, state.critic_opt, state.critic)
        critic = optax.apply_updates(state.critic, updates)
        metrics = {"actor_loss": pi_loss, "value_loss": v_loss, "entropy": ent}
        return A2CState(actor, critic, actor_opt, critic_opt, state.key), metrics
