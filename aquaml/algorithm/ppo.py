"""Proximal Policy Optimization (Schulman et al. 2017) with GAE(lambda).

One compiled call per rollout (:meth:`PPO._update`) does everything, in the order of these
pure functions (steps 1-3 are shared with other on-policy algorithms in
:mod:`aquaml.algorithm.on_policy`, step 4's are below):

1. :func:`scale_rewards`: rewards divided by the running std of the discounted return;
2. :func:`advantages`: observations normalised with the statistics the rollout was
   collected with, values, and :func:`gae`;
3. :func:`rollout_windows` (and :func:`burn_in_prefixes`): the rollout laid out as windows
   of consecutive steps of one env (single steps without sequence training);
4. :func:`minibatch_epochs`: ``n_update_epochs`` epochs of shuffled minibatches (``lax.scan``
   inside ``lax.scan``), each step minimising :func:`policy_loss` (clipped surrogate,
   entropy bonus) on :func:`normalize_advantages`'d advantages and :func:`value_loss`;
5. the observation statistics update.

With data-parallel learners the running statistics are merged over all learners' rollouts
(:func:`aquaml.data.normalizer.update_stats` with the learners' ``tree_sum``), so every
learner normalises alike and all learner state stays identical.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.on_policy import (advantages, burn_in_prefixes, rollout_windows, scale_rewards, unroll_windows,
                                        windows)
from aquaml.algorithm.builtin_parameters import PPOParameters
from aquaml.data import normalizer
from aquaml.data.batch import training_batch
from aquaml.env.base import ActionSpace
from aquaml.model.contract import ModelSpec
from aquaml.model.distributions import categorical_log_prob, gaussian_log_prob
from aquaml.model.jax_setup import acting_jit
from aquaml.model.optimizers import learner_sum
from aquaml.model.policy import CategoricalPolicy, GaussianPolicy, action_field
from aquaml.model.recurrent import flat as seq_flat
from aquaml.model.recurrent import weighted_mean
from aquaml.algorithm.feeders import RolloutFeeder


def PPO_parameter(**kwargs: Any) -> PPOParameters:
    """Seed-style constructor accepting the seed's names (``gamma``, ``lambada``, ``epsilon``, ...)."""
    return PPOParameters.from_kwargs(**kwargs)


# -- the algorithm as pure functions -------------------------------------------------------

def normalize_advantages(adv: jax.Array, weights: jax.Array) -> jax.Array:
    """Advantages centred and scaled to unit std over the steps of weight 1."""
    centred = adv - weighted_mean(adv, weights)
    return centred / (jnp.sqrt(weighted_mean(centred ** 2, weights)) + 1e-8)


def policy_loss(log_prob, old_log_prob, entropy, adv, weights, clip_range: float, ent_coef: float):
    """PPO's clipped surrogate loss with an entropy bonus, over the steps of weight 1.

    Returns ``(loss, (entropy, approx_kl, clip_fraction))``: ``approx_kl`` is the
    ``(r - 1) - log r`` estimator of KL(old || new), ``clip_fraction`` the share of steps
    whose ratio ``r`` lies outside ``1 +- clip_range``.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_range, 1 + clip_range) * adv)
    loss = -weighted_mean(surrogate, weights) - ent_coef * weighted_mean(entropy, weights)
    approx_kl = weighted_mean((ratio - 1) - jnp.log(ratio), weights)
    clipped = weighted_mean(jnp.abs(ratio - 1) > clip_range, weights)
    return loss, (weighted_mean(entropy, weights), approx_kl, clipped)


def value_loss(values, returns, old_values, weights, clip_value: float | None = None):
    """Half the mean squared error of ``values`` to ``returns``; with ``clip_value``, the larger
    of that and the error of the values clipped to ``old_values +- clip_value``."""
    loss = (values - returns) ** 2
    if clip_value is not None:
        v_clip = old_values + jnp.clip(values - old_values, -clip_value, clip_value)
        loss = jnp.maximum(loss, (v_clip - returns) ** 2)
    return 0.5 * weighted_mean(loss, weights)


def minibatch_epochs(step: Callable, carry, data, key: jax.Array, epochs: int, n_minibatches: int):
    """``epochs`` passes over ``data`` (leaves with a leading axis of units: steps or windows),
    each in ``n_minibatches`` shuffled minibatches: a ``lax.scan`` over minibatches inside a
    ``lax.scan`` over epochs, one fresh permutation per epoch.

    ``step(carry, minibatch) -> (carry, metrics)``. Returns ``(carry, metrics, key)``: metrics
    stacked ``(epochs, n_minibatches)``, the key advanced.
    """
    units = jax.tree_util.tree_leaves(data)[0].shape[0]

    def minibatch(carry, idx):
        return step(carry, jax.tree_util.tree_map(lambda x: x[idx], data))

    def epoch(carry, key):
        perm = jax.random.permutation(key, units).reshape(n_minibatches, units // n_minibatches)
        return jax.lax.scan(minibatch, carry, perm)

    key, *epoch_keys = jax.random.split(key, epochs + 1)
    carry, metrics = jax.lax.scan(epoch, carry, jnp.stack(epoch_keys))
    return carry, metrics, key


class PPOState(NamedTuple):
    actor: dict
    critic: list
    actor_opt: Any
    critic_opt: Any
    obs_stats: dict  # running observation statistics (merged over data-parallel learners)
    return_stats: dict  # running statistics of the discounted return (reward scaling; merged likewise)
    returns: jax.Array  # each env's running discounted return, (n_envs,): per-env data, differs between learners
    key: jax.Array


class PPO:
    """PPO on checked models: an ``actor`` (Gaussian or categorical) and a ``critic`` V(s)."""

    name: ClassVar[str] = "ppo"
    Parameters: ClassVar[type] = PPOParameters
    feeder: ClassVar[type] = RolloutFeeder
    critic_roles: ClassVar[tuple[str, ...]] = ("critic",)
    critic_uses_action: ClassVar[bool] = False
    discrete_actions: ClassVar[bool] = True
    default_log_std_head: ClassVar[bool] = False

    def __init__(self, params: PPOParameters, models: Mapping[str, ModelSpec], action_space: ActionSpace) -> None:
        self.params = params
        self.models = dict(models)
        self.discrete = action_space.n is not None
        actor = models["actor"]
        self.policy = CategoricalPolicy(actor) if self.discrete else GaussianPolicy(actor, params.log_std_init)
        clip = [optax.clip_by_global_norm(params.max_grad_norm)] if params.max_grad_norm else []
        self.actor_tx = optax.chain(*clip, actor.optimizer)
        self.critic_tx = optax.chain(*clip, models["critic"].optimizer)
        # Data-parallel learners (built inside gradients_transformed_by(mean_across(comm))): the sum
        # over learners that merges the running statistics; None for a single learner.
        self.tree_sum = learner_sum()
        state_names = set(actor.state_outputs)
        self.sequence = params.sequence_length
        if self.sequence and not state_names:
            raise ValueError(f"sequence training (sequence_length/batch_trajectory) needs a recurrent actor: "
                             f"{type(actor.model).__name__} declares no state outputs (an output name that is "
                             "also in its input_name)")
        self.norm_shapes = {k: s for k, s in self._obs_shapes().items() if k not in state_names}
        batch = params.rollout_length * params.n_envs
        self.n_minibatches = batch // params.batch_size
        self.grad_steps_per_update = params.n_update_epochs * self.n_minibatches
        self.extra_fields = {"log_prob": ((), np.dtype(np.float32))}
        if not self.discrete:
            self.extra_fields["raw_action"] = ((self.policy.action_dim,), np.dtype(np.float32))
        self.update = jax.jit(self._update)
        self.act = acting_jit(self._act, static_argnames="deterministic")

    def _obs_shapes(self) -> dict:
        """Shapes of the observations the models read (what the normaliser tracks)."""
        return {k: v for spec in self.models.values() for k, v in spec.input_shapes.items()}

    @property
    def action_field(self) -> tuple[tuple[int, ...], np.dtype]:
        return action_field(self.policy)

    def random_action(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise RuntimeError("PPO collects with its policy from the first step")

    def init_state(self, key: jax.Array) -> PPOState:
        actor = self.policy.init_params()
        critic = self.models["critic"].fn.init_params()
        return PPOState(actor, critic, self.actor_tx.init(actor), self.critic_tx.init(critic),
                        normalizer.init_stats(self.norm_shapes), normalizer.init_stats({"r": ()}),
                        jnp.zeros((self.params.n_envs,), jnp.float32), key)

    def actor_params(self, state: PPOState) -> dict:
        return {"actor": state.actor, "obs_stats": state.obs_stats}

    def model_params(self, state: PPOState) -> dict:
        return {"actor": state.actor["net"], "critic": state.critic}

    def _normalize(self, stats, obs):
        return normalizer.normalize(stats, obs) if self.params.normalize_obs else obs

    def _act(self, actor_params, obs, key, deterministic: bool = False):
        key, sub = jax.random.split(key)
        obs = self._normalize(actor_params["obs_stats"], obs)
        action_dict, extras = self.policy.act(actor_params["actor"], obs, sub, deterministic)
        return action_dict, extras, key

    def log_prob_of(self, state: PPOState, obs, action) -> jax.Array:
        """``log pi(a|s)`` of given actions (a Gaussian's density at ``a`` in ``[-1, 1]``, or a
        categorical's log-probability of an index or a one-hot vector) under the current actor,
        without gradient."""
        actor = jax.lax.stop_gradient(state.actor)
        outputs = self.policy.outputs(actor["net"], self._normalize(state.obs_stats, obs))
        n = action.shape[0]
        if self.discrete and jnp.issubdtype(action.dtype, jnp.floating):  # one-hot (a discriminator's input)
            return jnp.sum(action.reshape(n, -1) * jax.nn.log_softmax(self.policy.flat_mean(outputs)), axis=-1)
        if self.discrete:
            return categorical_log_prob(self.policy.flat_mean(outputs), action.reshape(n))
        mean, log_std = self.policy.dist(actor, outputs)
        return gaussian_log_prob(action.reshape(n, -1), mean, log_std)

    def _value(self, critic, obs) -> jax.Array:
        v = self.models["critic"].fn.apply(critic, obs)
        return v.reshape(v.shape[0])

    prepare_rollout = staticmethod(training_batch)

    def _update(self, state: PPOState, rollout) -> tuple[PPOState, dict]:
        p = self.params
        T, N = rollout["reward"].shape
        L = self.sequence or 1  # window length; single steps without sequence training
        rewards, return_stats, running_returns = rollout["reward"], state.return_stats, state.returns
        if p.scale_reward:
            done = jnp.maximum(rollout["terminated"], rollout["truncated"])
            rewards, return_stats, running_returns = scale_rewards(rewards, done, state.returns, state.return_stats,
                                                                   p.discount, self.tree_sum)
        obs, values, adv, returns = advantages(self._value, state.critic, state.obs_stats if p.normalize_obs else None,
                                               rollout["obs"], rollout["next_obs"], rewards, rollout["terminated"],
                                               rollout["truncated"], p.discount, p.gae_lambda)
        data = rollout_windows({"obs": obs, "action": rollout["action"], "extras": rollout["extras"], "adv": adv,
                                "returns": returns, "values": values}, rollout["terminated"], rollout["truncated"], L)
        if p.burn_in:
            actor_inputs = {k: data["obs"][k] for k in self.models["actor"].input_names}
            data["burn_in"], data["starts"] = burn_in_prefixes(
                actor_inputs, windows(rollout["terminated"], L), windows(rollout["truncated"], L), data["starts"],
                T // L, p.burn_in)
        weights = jnp.ones((p.batch_size,), jnp.float32)  # every step carries loss

        def gradient_step(carry, mb):
            actor, critic, actor_opt, critic_opt = carry
            steps = seq_flat({k: v for k, v in mb.items() if k != "burn_in"}, p.batch_size)
            adv = normalize_advantages(steps["adv"], weights) if p.normalize_advantage else steps["adv"]

            def actor_loss(actor):
                if self.sequence:
                    outputs = seq_flat(unroll_windows(self.models["actor"], actor["net"], mb["obs"], mb["starts"],
                                                      mb.get("burn_in")), p.batch_size)
                else:
                    outputs = self.policy.outputs(actor["net"], steps["obs"])
                log_prob, entropy = self.policy.log_prob_entropy(actor, outputs, steps["action"], steps["extras"])
                return policy_loss(log_prob, steps["extras"]["log_prob"], entropy, adv, weights, p.clip_range,
                                   p.ent_coef)

            def critic_loss(critic):
                return value_loss(self._value(critic, steps["obs"]), steps["returns"], steps["values"], weights,
                                  p.clip_value)

            (pi_loss, (entropy, kl, clipped)), g_actor = jax.value_and_grad(actor_loss, has_aux=True)(actor)
            v_loss, g_critic = jax.value_and_grad(critic_loss)(critic)
            updates, actor_opt = self.actor_tx.update(g_actor, actor_opt, actor)
            actor = optax.apply_updates(actor, updates)
            updates, critic_opt = self.critic_tx.update(g_critic, critic_opt, critic)
            critic = optax.apply_updates(critic, updates)
            metrics = {"actor_loss": pi_loss, "value_loss": v_loss, "entropy": entropy, "approx_kl": kl,
                       "clip_fraction": clipped}
            return (actor, critic, actor_opt, critic_opt), metrics

        carry = (state.actor, state.critic, state.actor_opt, state.critic_opt)
        (actor, critic, actor_opt, critic_opt), metrics, key = minibatch_epochs(
            gradient_step, carry, data, state.key, p.n_update_epochs, self.n_minibatches)
        obs_stats = normalizer.update_stats(state.obs_stats, {k: rollout["obs"][k] for k in self.norm_shapes},
                                            self.tree_sum)
        metrics = jax.tree_util.tree_map(jnp.mean, metrics)
        metrics["explained_variance"] = 1 - jnp.var(returns - values) / (jnp.var(returns) + 1e-8)
        new_state = PPOState(actor, critic, actor_opt, critic_opt, obs_stats, return_stats, running_returns, key)
        return new_state, metrics
