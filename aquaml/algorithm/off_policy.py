"""What SAC and TD3 share: the loop parameters and the twin-critic machinery."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.parameters import Parameters, check_positive
from aquaml.data.batch import nest
from aquaml.model.contract import ModelSpec
from aquaml.model.recurrent import weighted_mean


@dataclass
class OffPolicyParameters(Parameters):
    """Replay-based training loop settings, shared by SAC and TD3.

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
    tau: float = 0.005  #: Polyak factor of the target networks
    buffer_size: int = 1_000_000
    mini_buffer_size: int = 1000  #: random-action transitions collected before learning
    display_interval: int = 20  #: epochs between evaluations, log rows and console tables
    calculate_episodes: int = 5  #: deterministic episodes per evaluation
    store_model_times: int = 5  #: displays between checkpoints (one is always written at the end)
    save_buffer: bool = True  #: checkpoint the replay buffer too (needed for an exact resume)
    seed: int = 0
    n_envs: int = 1  #: environments stepped together (one batched policy call per step)
    #: collect the next epoch while the last epoch's gradient steps run (the acting policy then
    #: lags one epoch of updates), and with 2+ workers act for half the envs while the rest step
    overlap: bool = False
    hidden_sizes: tuple[int, ...] = (64, 64)  #: default models only
    lstm_size: int = 0  #: default models only: an LSTM of this size first in the actor (recurrent)
    learning_rate: float = 1e-3  #: default models only

    def __post_init__(self) -> None:
        if self.update_times is None:
            self.update_times = self.update_interval
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.check_types()
        check_positive(self, "n_epochs", "update_interval", "update_times", "batch_size", "buffer_size", "n_envs",
                       "display_interval", "calculate_episodes", "store_model_times", "learning_rate")
        check_positive(self, "episode_length", allow_none=True)
        name = type(self).__name__
        if not 0 <= self.discount <= 1:
            raise ValueError(f"{name}.discount must lie in [0, 1], got {self.discount}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"{name}.tau must lie in (0, 1], got {self.tau}")
        if self.mini_buffer_size < 0:
            raise ValueError(f"{name}.mini_buffer_size must be >= 0, got {self.mini_buffer_size}")
        if self.seed < 0:
            raise ValueError(f"{name}.seed must be >= 0, got {self.seed}")
        for other in ("batch_size", "mini_buffer_size"):
            if getattr(self, other) > self.buffer_size:
                raise ValueError(f"{name}.{other} = {getattr(self, other)} exceeds buffer_size = {self.buffer_size}; "
                                 "learning could never start")

    @property
    def steps_per_env(self) -> int:
        """Steps of each environment per epoch."""
        return self.update_interval

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.update_interval * self.n_envs


class TwinCritics:
    """Two Q-networks ``Q(s, a)`` with their own optimizers, trained on a shared TD target."""

    def __init__(self, specs: Sequence[ModelSpec], action_shape: tuple[int, ...]) -> None:
        self.specs = tuple(specs)
        self.action_shape = tuple(action_shape)

    def init(self) -> tuple[tuple, tuple]:
        params = tuple(spec.fn.init_params() for spec in self.specs)
        return params, tuple(spec.optimizer.init(p) for spec, p in zip(self.specs, params))

    def q(self, index: int, params, obs, action) -> jax.Array:
        inputs = {**obs, "action": action.reshape(action.shape[0], *self.action_shape)}
        q = self.specs[index].fn.apply(params, inputs)
        return q.reshape(q.shape[0])

    def min_q(self, critics, obs, action) -> jax.Array:
        return jnp.minimum(self.q(0, critics[0], obs, action), self.q(1, critics[1], obs, action))

    def update(self, critics, opt_states, obs, action, target, weights=None) -> tuple[tuple, tuple, jax.Array, jax.Array]:
        """One gradient step of both critics towards ``target``; returns loss and mean Q1.

        ``weights`` (0 or 1 per sample) leave padded and burn-in steps out of the loss.
        """
        w = jnp.ones_like(target) if weights is None else weights
        wmean = functools.partial(weighted_mean, weights=w)

        def loss(params):
            q1 = self.q(0, params[0], obs, action)
            q2 = self.q(1, params[1], obs, action)
            return wmean((q1 - target) ** 2) + wmean((q2 - target) ** 2), wmean(q1)

        (q_loss, q_mean), grads = jax.value_and_grad(loss, has_aux=True)(critics)
        new_params, new_opt = [], []
        for spec, params, grad, opt in zip(self.specs, critics, grads, opt_states):
            updates, opt = spec.optimizer.update(grad, opt, params)
            new_params.append(optax.apply_updates(params, updates))
            new_opt.append(opt)
        return tuple(new_params), tuple(new_opt), q_loss, q_mean


def prepare_batches(flat: Mapping[str, np.ndarray]) -> dict:
    """Nested float32 arrays the off-policy updates expect, from replay-buffer fields."""
    out = nest(flat)
    for k in ("reward", "terminated", "truncated", "mask"):
        if k in out:
            out[k] = out[k].astype(np.float32)
    return out


class OffPolicyAlgorithm:
    """Base of SAC and TD3: acting, the scanned update, and what the starter reads.

    Subclasses set ``policy`` and implement ``init_state(key)`` and ``_update_one(state,
    batch) -> (state, metrics)``, a pure function of one gradient step.
    """

    name: ClassVar[str]
    Parameters: ClassVar[type]
    kind: ClassVar[str] = "off_policy"
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2")
    critic_uses_action: ClassVar[bool] = True
    discrete_actions: ClassVar[bool] = False
    default_log_std_head: ClassVar[bool] = True  #: the default actor gets a log-std output
    extra_fields: ClassVar[dict] = {}
    prepare_batches = staticmethod(prepare_batches)

    def __init__(self, params, models: Mapping[str, ModelSpec], policy) -> None:
        self.params = params
        self.models = dict(models)
        self.policy = policy
        self.critics = TwinCritics([models[r] for r in self.critic_roles], policy.action_shape)
        self.update = jax.jit(self._update_many)
        self.act = jax.jit(self._act, static_argnames="deterministic")

    @property
    def action_field(self) -> tuple[tuple[int, ...], np.dtype]:
        return self.policy.action_shape, np.dtype(np.float32)

    def random_action(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, (n, *self.policy.action_shape)).astype(np.float32)

    def _act(self, actor_params, obs, key, deterministic: bool = False):
        key, sub = jax.random.split(key)
        action_dict, extras = self.policy.act(actor_params, obs, sub, deterministic)
        return action_dict, extras, key

    def _update_one(self, state, batch):
        raise NotImplementedError

    def _update_many(self, state, batches):
        """``batches`` has a leading axis of ``update_times``; one scanned gradient step each."""
        state, metrics = jax.lax.scan(self._update_one, state, batches)
        return state, jax.tree_util.tree_map(jnp.mean, metrics)

    def actor_params(self, state):
        return state.actor

    def model_params(self, state) -> dict:
        """Keras-model parameters by role, for saving in Keras' weight format."""
        return {"actor": state.actor["net"], **dict(zip(self.critic_roles, state.critics))}
