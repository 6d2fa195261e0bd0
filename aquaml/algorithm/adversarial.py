"""Adversarial imitation (GAIL, AIRL, AMP): a discriminator trained inside the generator's update.

Each gradient step of the compiled update takes a batch of the agent's transitions (replay
buffer) and a batch of expert transitions (the dataset):

1. one discriminator step: expert transitions are labelled 1, the agent's 0 (binary
   cross-entropy on logits, or AMP's least squares towards +1 / -1), plus an optional gradient
   penalty ``w * mean |d logit / d x|^2`` on the expert inputs;
2. the agent's batch gets the imitation reward computed from the updated discriminator;
3. the generator (SAC by default, Discriminator-Actor-Critic style) takes its own step.

Episode ends never leak reward. A time-limit truncation bootstraps as always. A termination
leads, as in DAC, to an absorbing state whose every step is scored by the discriminator; here
that state's reward is action-independent, so it is one learned logit ``absorbing_logit``
trained with the share of terminal transitions in each batch as the weight of its expert and
agent terms (a batch that holds ``k`` terminations holds ``k`` absorbing transitions). Its
value ``r_a / (1 - gamma)`` is added, discounted, to each terminal transition's reward: an
agent that ends episodes more often than the expert learns that ending costs reward, one that
ends them less often that ending pays, and with equal rates nothing changes.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from aquaml.data.batch import training_batch
from aquaml.model.contract import ModelSpec
from aquaml.model.optimizers import make_optimizer

REWARDS = ("logit", "positive", "negative")


def discriminator_inputs(spec: ModelSpec, batch: Mapping[str, Any]) -> dict[str, jax.Array]:
    """The named inputs of a discriminator from a transition batch: ``action``, an observation
    ``name`` (``batch['obs'][name]``) or ``next_<name>`` (``batch['next_obs'][name]``)."""
    n = batch["reward"].shape[0]
    out = {}
    for name, shape in spec.input_shapes.items():
        if name == "action":
            out[name] = batch["action"].reshape(n, *shape).astype(jnp.float32)
        elif name in batch["obs"]:
            out[name] = batch["obs"][name]
        else:
            out[name] = batch["next_obs"][name[len("next_"):]]
    return out


def logits_of(spec: ModelSpec, params, inputs: Mapping[str, jax.Array]) -> jax.Array:
    out = spec.fn.apply(params, dict(inputs))
    return out.reshape(out.shape[0])


def expert_loss(loss: str, logit: jax.Array) -> jax.Array:
    """Per expert sample: ``-log sigmoid(l)`` (``'bce'``) or AMP's ``(D - 1)^2`` (``'least_squares'``)."""
    return jax.nn.softplus(-logit) if loss == "bce" else (logit - 1.0) ** 2


def policy_loss(loss: str, logit: jax.Array) -> jax.Array:
    """Per agent sample: ``-log(1 - sigmoid(l))`` (``'bce'``) or AMP's ``(D + 1)^2``."""
    return jax.nn.softplus(logit) if loss == "bce" else (logit + 1.0) ** 2


def imitation_reward(logit: jax.Array, kind: str) -> jax.Array:
    """``'logit'``: ``log D - log(1 - D)`` (unbiased: no sign); ``'positive'``: ``-log(1 - D)``;
    ``'negative'``: ``log D``; ``'amp'``: AMP's ``max(0, 1 - 0.25 (D - 1)^2)``."""
    if kind == "logit":
        return logit
    if kind == "positive":
        return jax.nn.softplus(logit)
    if kind == "negative":
        return -jax.nn.softplus(-logit)
    if kind == "amp":
        return jnp.maximum(0.0, 1.0 - 0.25 * (logit - 1.0) ** 2)
    raise ValueError(f"imitation reward {kind!r}; use one of {', '.join(REWARDS)} or 'amp'")


def absorbing_bonus(terminated: jax.Array, absorbing_reward: jax.Array, discount: float) -> jax.Array:
    """What a terminal transition's reward gains from the absorbing state after it:
    ``gamma * r_a / (1 - gamma)`` on terminal transitions, 0 elsewhere."""
    return terminated * discount * absorbing_reward / max(1.0 - discount, 1e-6)


class AdversarialState(NamedTuple):
    gen: Any  #: the generator's training state (e.g. a SACState)
    disc: Any  #: the discriminator's parameters (and, for AIRL, the shaping model's)
    disc_opt: Any
    absorbing_logit: jax.Array


class Adversarial:
    """Mixin placed before the generator (e.g. ``class GAIL(Adversarial, SAC)``).

    Subclasses set ``loss`` (``'bce'`` or ``'least_squares'``), ``reward_kind`` and, where
    the discriminator's logit is not the model's output (AIRL), override :meth:`disc_logits`
    and :meth:`generator_reward`. The parameters need ``dataset``, ``gradient_penalty``,
    ``discount`` and the discriminator settings below.
    """

    kind: ClassVar[str] = "adversarial"
    loss: ClassVar[str] = "bce"
    disc_roles: ClassVar[tuple[str, ...]] = ("discriminator",)
    dataset_roles: ClassVar[tuple[str, ...]] = ("discriminator",)  #: the models that read expert data
    input_kinds: ClassVar[dict[str, str]] = {"discriminator": "discriminator"}
    prepare_batches = staticmethod(training_batch)

    def __init__(self, params, models: Mapping[str, ModelSpec], action_space=None) -> None:
        super().__init__(params, models, action_space)
        self.disc_specs = {role: models[role] for role in self.disc_roles}
        # every discriminator-side model steps with its own optimizer, all inside one update
        self.disc_tx = {role: spec.optimizer for role, spec in self.disc_specs.items()}
        # built like every model optimizer, so data-parallel learners average its gradient too
        self.absorbing_tx = make_optimizer("Adam", self.disc_specs["discriminator"].learning_rate, owner="absorbing")

    @property
    def reward_kind(self) -> str:
        return self.params.reward

    # -- state -----------------------------------------------------------------------------
    def init_state(self, key: jax.Array) -> AdversarialState:
        disc = {role: spec.fn.init_params() for role, spec in self.disc_specs.items()}
        opt = {role: self.disc_tx[role].init(p) for role, p in disc.items()}
        absorbing = jnp.zeros((), jnp.float32)
        opt["absorbing"] = self.absorbing_tx.init(absorbing)
        return AdversarialState(super().init_state(key), disc, opt, absorbing)

    def actor_params(self, state: AdversarialState):
        return super().actor_params(state.gen)

    def model_params(self, state: AdversarialState) -> dict:
        return {**super().model_params(state.gen), **state.disc}

    # -- the discriminator -------------------------------------------------------------------
    def disc_logits(self, disc, gen_state, batch) -> jax.Array:
        """The discriminator's logit per transition (the model's output)."""
        spec = self.disc_specs["discriminator"]
        return logits_of(spec, disc["discriminator"], discriminator_inputs(spec, batch))

    def generator_reward(self, disc, gen_state, batch, logit: jax.Array) -> jax.Array:
        return imitation_reward(logit, self.reward_kind)

    def _disc_loss(self, params, gen_state, policy, expert):
        disc, absorbing = params
        p = self.params
        expert_logit = self.disc_logits(disc, gen_state, expert)
        policy_logit = self.disc_logits(disc, gen_state, policy)
        loss = jnp.mean(expert_loss(self.loss, expert_logit)) + jnp.mean(policy_loss(self.loss, policy_logit))
        # the absorbing state appears as often as terminations in each batch
        loss += (jnp.mean(expert["terminated"]) * expert_loss(self.loss, absorbing)
                 + jnp.mean(policy["terminated"]) * policy_loss(self.loss, absorbing))
        penalty = jnp.float32(0.0)
        if p.gradient_penalty:
            spec = self.disc_specs["discriminator"]
            inputs = discriminator_inputs(spec, expert)

            def total_logit(x):
                return jnp.sum(self.disc_logits(disc, gen_state, _with_inputs(expert, spec, x)))

            grads = jax.grad(total_logit)(inputs)
            sq = sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in grads.values())
            penalty = jnp.mean(sq)
            loss += p.gradient_penalty * penalty
        metrics = {"disc_loss": loss, "expert_logit": jnp.mean(expert_logit), "policy_logit": jnp.mean(policy_logit),
                   "expert_accuracy": jnp.mean(expert_logit > 0), "policy_accuracy": jnp.mean(policy_logit < 0),
                   "grad_penalty": penalty}
        return loss, metrics

    def _disc_step(self, state: AdversarialState, policy, expert):
        params = (state.disc, state.absorbing_logit)
        (_, metrics), (g_disc, g_abs) = jax.value_and_grad(self._disc_loss, has_aux=True)(
            params, state.gen, policy, expert)
        disc, opt = {}, {}
        for role, p in state.disc.items():
            updates, opt[role] = self.disc_tx[role].update(g_disc[role], state.disc_opt[role], p)
            disc[role] = optax.apply_updates(p, updates)
        updates, opt["absorbing"] = self.absorbing_tx.update(g_abs, state.disc_opt["absorbing"], state.absorbing_logit)
        absorbing = optax.apply_updates(state.absorbing_logit, updates)
        return disc, opt, absorbing, metrics

    # -- one step: discriminator, reward, generator ---------------------------------------------
    def _update_one(self, state: AdversarialState, batches):
        policy, expert = batches
        disc, opt, absorbing, metrics = self._disc_step(state, policy, expert)
        logit = self.disc_logits(disc, state.gen, policy)
        reward = self.generator_reward(disc, state.gen, policy, logit)
        absorbing_reward = imitation_reward(absorbing, self.reward_kind)
        reward = reward + absorbing_bonus(policy["terminated"], absorbing_reward, self.params.discount)
        reward = jax.lax.stop_gradient(self.mix_task_reward(policy["reward"], reward))
        gen, gen_metrics = super()._update_one(state.gen, {**policy, "reward": reward})
        metrics.update(gen_metrics, imitation_reward=jnp.mean(reward), absorbing_logit=absorbing)
        return AdversarialState(gen, disc, opt, absorbing), metrics

    def mix_task_reward(self, task_reward: jax.Array, imitation: jax.Array) -> jax.Array:
        """The reward the generator learns from (AMP mixes in the environment's)."""
        return imitation


def _with_inputs(batch, spec: ModelSpec, inputs: Mapping[str, jax.Array]):
    """``batch`` with the discriminator's inputs replaced (to differentiate with respect to them)."""
    obs, next_obs = dict(batch["obs"]), dict(batch["next_obs"])
    out = dict(batch)
    for name, value in inputs.items():
        if name == "action":
            out["action"] = value
        elif name in obs:
            obs[name] = value
        else:
            next_obs[name[len("next_"):]] = value
    out["obs"], out["next_obs"] = obs, next_obs
    return out
