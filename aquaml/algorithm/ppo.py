"""Proximal Policy Optimization (Schulman et al. 2017) with GAE(lambda).

One compiled call per rollout does everything: observation normalisation with the
statistics the rollout was collected with, values and GAE, then ``update_times`` epochs of
shuffled minibatches (``lax.scan`` inside ``lax.scan``), then the statistics update.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.parameters import Parameters, check_positive
from aquaml.data import normalizer
from aquaml.data.batch import nest
from aquaml.env.base import ActionSpace
from aquaml.model.contract import ModelSpec
from aquaml.model.policy import CategoricalPolicy, GaussianPolicy
from aquaml.model.recurrent import flat as seq_flat
from aquaml.model.recurrent import episode_starts, unroll, weighted_mean


@dataclass
class PPOParameters(Parameters):
    """PPO hyperparameters. An epoch collects ``rollout_length`` steps from each of ``n_envs``
    environments, then trains ``update_times`` passes of minibatches of ``batch_size``."""

    ALIASES: ClassVar[Mapping[str, str]] = {
        "epoch_length": "episode_length", "gamma": "discount", "lambada": "gae_lambda", "lam": "gae_lambda",
        "epsilon": "clip_range", "clip_ratio": "clip_range", "entropy_coeff": "ent_coef",
        "n_steps": "rollout_length", "update_epochs": "update_times"}

    episode_length: int | None = None  #: step limit per episode (a truncation); None: the env's own
    n_epochs: int = 100  #: rollouts to collect and train on
    n_envs: int = 8
    overlap: bool = False  #: with 2+ sampler workers, act for half the envs while the rest step
    rollout_length: int = 128  #: steps per environment per rollout
    update_times: int = 10  #: passes over each rollout
    batch_size: int = 256  #: minibatch size; must divide rollout_length * n_envs
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_value: float | None = None  #: clip value updates to this range around the old values
    ent_coef: float = 0.0
    max_grad_norm: float | None = 0.5  #: per model (actor and critic have their own optimizers)
    normalize_advantage: bool = True
    normalize_obs: bool = True  #: running mean/std of the declared observations (not of states)
    scale_reward: bool = False  #: divide rewards by the running std of the discounted return
    log_std_init: float = 0.0  #: state-independent log-std start (actors without a log_std output)
    sequence_length: int | None = None  #: train a recurrent actor on windows of this many steps (form 2)
    batch_trajectory: bool = False  #: the seed's flag: sequence training on whole rollouts
    burn_in: int = 0  #: leading steps of each window that only warm up the state
    display_interval: int = 10
    calculate_episodes: int = 5
    store_model_times: int = 5
    seed: int = 0
    hidden_sizes: tuple[int, ...] = (64, 64)  #: default models only
    lstm_size: int = 0  #: default models only: an LSTM of this size first in the actor (recurrent)
    learning_rate: float = 3e-4  #: default models only

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.check_types()
        check_positive(self, "n_epochs", "n_envs", "rollout_length", "update_times", "batch_size",
                       "display_interval", "calculate_episodes", "store_model_times", "clip_range", "learning_rate")
        check_positive(self, "episode_length", "clip_value", "max_grad_norm", allow_none=True)
        for name in ("discount", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"PPOParameters.{name} must lie in [0, 1], got {getattr(self, name)}")
        if (self.rollout_length * self.n_envs) % self.batch_size:
            raise ValueError(f"PPOParameters.batch_size = {self.batch_size} must divide rollout_length * n_envs "
                             f"= {self.rollout_length * self.n_envs}")
        if self.seed < 0:
            raise ValueError(f"PPOParameters.seed must be >= 0, got {self.seed}")
        if self.batch_trajectory and self.sequence_length is None:
            self.sequence_length = self.rollout_length
        if self.sequence_length is not None:
            L = self.sequence_length
            if L <= 0 or self.rollout_length % L or self.batch_size % L:
                raise ValueError(f"PPOParameters.sequence_length = {L} must divide rollout_length "
                                 f"({self.rollout_length}) and batch_size ({self.batch_size})")
            if not 0 <= self.burn_in < L:
                raise ValueError(f"PPOParameters.burn_in = {self.burn_in} must lie in [0, sequence_length)")
        elif self.burn_in:
            raise ValueError("PPOParameters.burn_in needs sequence_length (or batch_trajectory=True)")

    @property
    def steps_per_env(self) -> int:
        return self.rollout_length

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.rollout_length * self.n_envs


def PPO_parameter(**kwargs: Any) -> PPOParameters:
    """Seed-style constructor accepting the seed's names (``gamma``, ``lambada``, ``epsilon``, ...)."""
    return PPOParameters.from_kwargs(**kwargs)


def gae(rewards, values, next_values, terminated, truncated, discount: float, lam: float):
    """Generalised advantage estimates and returns over ``(T, N)`` arrays.

    ``next_values[t]`` is the value of the observation reached at step ``t`` (the true last
    observation when the episode was truncated there). Terminations stop bootstrapping;
    terminations and truncations both stop the advantage recursion.
    """
    deltas = rewards + discount * (1.0 - terminated) * next_values - values
    continues = 1.0 - jnp.maximum(terminated, truncated)

    def step(next_adv, x):
        delta, cont = x
        adv = delta + discount * lam * cont * next_adv
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True)
    return adv, adv + values


class PPOState(NamedTuple):
    actor: dict
    critic: list
    actor_opt: Any
    critic_opt: Any
    obs_stats: dict  # running observation statistics
    return_stats: dict  # running statistics of the discounted return (reward scaling)
    returns: jax.Array  # each env's running discounted return, (n_envs,)
    key: jax.Array


class PPO:
    """PPO on checked models: an ``actor`` (Gaussian or categorical) and a ``critic`` V(s)."""

    name: ClassVar[str] = "ppo"
    Parameters: ClassVar[type] = PPOParameters
    kind: ClassVar[str] = "on_policy"
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
        state_names = set(actor.state_outputs)
        self.sequence = params.sequence_length
        if self.sequence and not state_names:
            raise ValueError(f"sequence training (sequence_length/batch_trajectory) needs a recurrent actor: "
                             f"{type(actor.model).__name__} declares no state outputs (an output name that is "
                             "also in its input_name)")
        self.norm_shapes = {k: s for k, s in self._obs_shapes().items() if k not in state_names}
        batch = params.rollout_length * params.n_envs
        self.n_minibatches = batch // params.batch_size
        self.grad_steps_per_update = params.update_times * self.n_minibatches
        self.extra_fields = {"log_prob": ((), np.dtype(np.float32))}
        if not self.discrete:
            self.extra_fields["raw_action"] = ((self.policy.action_dim,), np.dtype(np.float32))
        self.update = jax.jit(self._update)
        self.act = jax.jit(self._act, static_argnames="deterministic")

    def _obs_shapes(self) -> dict:
        """Shapes of the observations the models read (what the normaliser tracks)."""
        return {k: v for spec in self.models.values() for k, v in spec.input_shapes.items()}

    @property
    def action_field(self) -> tuple[tuple[int, ...], np.dtype]:
        if self.discrete:
            return (), np.dtype(np.int64)
        return self.policy.action_shape, np.dtype(np.float32)

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

    def _value(self, critic, obs) -> jax.Array:
        v = self.models["critic"].fn.apply(critic, obs)
        return v.reshape(v.shape[0])

    def prepare_rollout(self, batch: Mapping[str, np.ndarray]) -> dict:
        out = nest(batch)
        for k in ("reward", "terminated", "truncated"):
            out[k] = out[k].astype(np.float32)
        return out

    def _scale_rewards(self, state: PPOState, rollout):
        """Divide rewards by the running std of each env's discounted return (SB3's VecNormalize)."""
        if not self.params.scale_reward:
            return rollout["reward"], state.return_stats, state.returns

        def step(ret, x):
            reward, done = x
            ret = ret * self.params.discount + reward
            return ret * (1.0 - done), ret

        done = jnp.maximum(rollout["terminated"], rollout["truncated"])
        returns, seen = jax.lax.scan(step, state.returns, (rollout["reward"], done))
        stats = normalizer.update_stats(state.return_stats, {"r": seen})
        return rollout["reward"] / jnp.sqrt(stats["var"]["r"] + normalizer.EPS), stats, returns

    def _update(self, state: PPOState, rollout) -> tuple[PPOState, dict]:
        p = self.params
        T, N = rollout["reward"].shape
        flat = lambda tree: jax.tree_util.tree_map(lambda x: x.reshape(T * N, *x.shape[2:]), tree)  # noqa: E731
        raw_obs = flat(rollout["obs"])
        obs = self._normalize(state.obs_stats, raw_obs)
        next_obs = self._normalize(state.obs_stats, flat(rollout["next_obs"]))
        rewards, return_stats, running_returns = self._scale_rewards(state, rollout)
        values = self._value(state.critic, obs).reshape(T, N)
        next_values = self._value(state.critic, next_obs).reshape(T, N)
        adv, returns = gae(rewards, values, next_values, rollout["terminated"], rollout["truncated"],
                           p.discount, p.gae_lambda)
        data = {"obs": obs, "action": flat(rollout["action"]), "extras": flat(rollout["extras"]),
                "adv": adv.reshape(-1), "returns": returns.reshape(-1), "values": values.reshape(-1)}
        # (T, N) step-major -> (N * T / L, L) windows of consecutive steps of one env (L = 1 without sequences)
        L = self.sequence or 1
        windows = lambda x: jnp.swapaxes(x.reshape(T, N, *x.shape[1:]), 0, 1).reshape(-1, L, *x.shape[1:])  # noqa: E731
        data = jax.tree_util.tree_map(windows, data)
        data["starts"] = episode_starts(windows(flat(rollout["terminated"])), windows(flat(rollout["truncated"])))
        units_per_mb = p.batch_size // L
        w = jnp.tile((jnp.arange(L) >= p.burn_in).astype(jnp.float32), units_per_mb)  # burn-in: no loss
        wmean = functools.partial(weighted_mean, weights=w)

        def minibatch(carry, idx):
            actor, critic, actor_opt, critic_opt = carry
            mb = jax.tree_util.tree_map(lambda x: x[idx], data)
            steps = seq_flat(mb, p.batch_size)
            a = steps["adv"]
            if p.normalize_advantage:
                centred = a - wmean(a)
                a = centred / (jnp.sqrt(wmean(centred ** 2)) + 1e-8)

            def actor_outputs(actor):
                if self.sequence:
                    return seq_flat(unroll(self.models["actor"], actor["net"], mb["obs"], mb["starts"], p.burn_in),
                                    p.batch_size)
                return self.policy.outputs(actor["net"], steps["obs"])

            def actor_loss(actor):
                outputs = actor_outputs(actor)
                log_prob, entropy = self.policy.log_prob_entropy(actor, outputs, steps["action"], steps["extras"])
                ratio = jnp.exp(log_prob - steps["extras"]["log_prob"])
                surrogate = jnp.minimum(ratio * a, jnp.clip(ratio, 1 - p.clip_range, 1 + p.clip_range) * a)
                loss = -wmean(surrogate) - p.ent_coef * wmean(entropy)
                approx_kl = wmean((ratio - 1) - jnp.log(ratio))
                clipped = wmean(jnp.abs(ratio - 1) > p.clip_range)
                return loss, (wmean(entropy), approx_kl, clipped)

            def value_loss(critic):
                v = self._value(critic, steps["obs"])
                loss = (v - steps["returns"]) ** 2
                if p.clip_value is not None:
                    v_clip = steps["values"] + jnp.clip(v - steps["values"], -p.clip_value, p.clip_value)
                    loss = jnp.maximum(loss, (v_clip - steps["returns"]) ** 2)
                return 0.5 * wmean(loss)

            (pi_loss, (entropy, kl, clipped)), g_actor = jax.value_and_grad(actor_loss, has_aux=True)(actor)
            v_loss, g_critic = jax.value_and_grad(value_loss)(critic)
            updates, actor_opt = self.actor_tx.update(g_actor, actor_opt, actor)
            actor = optax.apply_updates(actor, updates)
            updates, critic_opt = self.critic_tx.update(g_critic, critic_opt, critic)
            critic = optax.apply_updates(critic, updates)
            metrics = {"actor_loss": pi_loss, "value_loss": v_loss, "entropy": entropy, "approx_kl": kl,
                       "clip_fraction": clipped}
            return (actor, critic, actor_opt, critic_opt), metrics

        def epoch(carry, key):
            perm = jax.random.permutation(key, T * N // L).reshape(self.n_minibatches, units_per_mb)
            return jax.lax.scan(minibatch, carry, perm)

        key, *epoch_keys = jax.random.split(state.key, p.update_times + 1)
        carry = (state.actor, state.critic, state.actor_opt, state.critic_opt)
        (actor, critic, actor_opt, critic_opt), metrics = jax.lax.scan(epoch, carry, jnp.stack(epoch_keys))
        obs_stats = normalizer.update_stats(state.obs_stats, {k: raw_obs[k] for k in self.norm_shapes})
        metrics = jax.tree_util.tree_map(jnp.mean, metrics)
        metrics["explained_variance"] = 1 - jnp.var(returns - values) / (jnp.var(returns) + 1e-8)
        new_state = PPOState(actor, critic, actor_opt, critic_opt, obs_stats, return_stats, running_returns, key)
        return new_state, metrics
