"""What SAC and TD3 share: the twin-critic machinery and the scanned off-policy update."""
from __future__ import annotations

import functools
from typing import ClassVar, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.data.batch import training_batch
from aquaml.model.contract import ModelSpec
from aquaml.model.jax_setup import acting_jit
from aquaml.model.policy import action_field, random_actions
from aquaml.model.recurrent import weighted_mean
from aquaml.algorithm.feeders import ReplayFeeder


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


class ScannedUpdates:
    """Acting through ``self.policy``, and an epoch's gradient steps as one compiled call:
    ``lax.scan`` of the pure ``_update_one(state, batch) -> (state, metrics)`` over batches
    stacked on a leading axis, metrics averaged. Shared by the off-policy and offline algorithms."""

    def _compile(self) -> None:
        self.update = jax.jit(self._update_many)
        self.act = acting_jit(self._act, static_argnames="deterministic")

    @property
    def action_field(self) -> tuple[tuple[int, ...], np.dtype]:
        return action_field(self.policy)

    def random_action(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return random_actions(self.policy, rng, n)

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


class OffPolicyAlgorithm(ScannedUpdates):
    """Base of SAC and TD3: acting, the scanned update, and what the starter reads.

    Subclasses set ``policy`` and implement ``init_state(key)`` and ``_update_one(state,
    batch) -> (state, metrics)``, a pure function of one gradient step.
    """

    name: ClassVar[str]
    Parameters: ClassVar[type]
    feeder: ClassVar[type] = ReplayFeeder
    critic_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2")
    q_roles: ClassVar[tuple[str, ...]] = ("qf1", "qf2")  #: the twin critics among the roles
    critic_uses_action: ClassVar[bool] = True
    discrete_actions: ClassVar[bool] = False
    default_log_std_head: ClassVar[bool] = True  #: the default actor gets a log-std output
    extra_fields: ClassVar[dict] = {}
    prepare_batches = staticmethod(training_batch)

    def __init__(self, params, models: Mapping[str, ModelSpec], policy) -> None:
        self.params = params
        self.models = dict(models)
        self.policy = policy
        self.critics = TwinCritics([models[r] for r in self.q_roles], policy.action_shape)
        self._compile()

    def actor_params(self, state):
        return state.actor

    def model_params(self, state) -> dict:
        """Keras-model parameters by role, for saving in Keras' weight format."""
        return {"actor": state.actor["net"], **dict(zip(self.q_roles, state.critics))}
