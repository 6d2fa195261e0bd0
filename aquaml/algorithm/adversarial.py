"""Adversarial imitation (GAIL, AIRL, AMP): a discriminator trained inside the generator's update.

With an off-policy generator (SAC, Discriminator-Actor-Critic style; :class:`Adversarial`)
each gradient step of the compiled update takes a batch of the agent's transitions (replay
buffer) and a batch of expert transitions (the dataset):

1. one discriminator step: expert transitions are labelled 1, the agent's 0 (binary
   cross-entropy on logits, or AMP's least squares towards +1 / -1), plus an optional gradient
   penalty ``c * w * mean |d logit / d x|^2`` on the expert inputs, ``w`` the parameters'
   ``gradient_penalty`` and ``c`` the class's ``gradient_penalty_scale`` (1; AMP's 1/2 follows
   Peng et al. 2021, eq. 8, ``(w_gp / 2) E |grad D|^2``) (for windows scored by a recurrent
   discriminator: the gradient of the window's summed logits with respect to each step's inputs);
2. the agent's batch gets the imitation reward computed from the updated discriminator;
3. the generator takes its own step.

With an on-policy generator (PPO; :class:`AdversarialRollouts`) the compiled update of a
rollout first runs ``discriminator_epochs`` passes of discriminator steps over the rollout's
transitions in minibatches (each against a batch of expert transitions), then scores every
step of the rollout with the updated discriminator and hands the rollout, with that reward,
to the generator's update.

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

from aquaml.algorithm.builtin_parameters import REWARDS
from aquaml.data.batch import training_batch
from aquaml.model.contract import ModelSpec
from aquaml.model.optimizers import make_optimizer
from aquaml.model.recurrent import episode_starts, unroll, weighted_mean
from aquaml.algorithm.feeders import AdversarialReplayFeeder, AdversarialRolloutFeeder

def discriminator_inputs(spec: ModelSpec, batch: Mapping[str, Any]) -> dict[str, jax.Array]:
    """The named inputs of a discriminator from a batch of transitions (or ``(B, L)`` windows):
    ``action``, an observation ``name`` (``batch['obs'][name]``) or ``next_<name>``
    (``batch['next_obs'][name]``); a recurrent discriminator's state inputs start at zeros."""
    lead = batch["reward"].shape
    out = {}
    for name, shape in spec.input_shapes.items():
        if name in spec.state_outputs:
            out[name] = jnp.zeros((*lead, *shape), jnp.float32)
        elif name == "action" and jnp.issubdtype(batch["action"].dtype, jnp.integer):
            out[name] = jax.nn.one_hot(batch["action"].reshape(lead), shape[-1])  # a discrete action's index
        elif name == "action":
            out[name] = batch["action"].reshape(*lead, *shape).astype(jnp.float32)
        elif name in batch["obs"]:
            out[name] = batch["obs"][name]
        else:
            out[name] = batch["next_obs"][name[len("next_"):]]
    return out


def logits_of(spec: ModelSpec, params, inputs: Mapping[str, jax.Array], starts: jax.Array | None = None) -> jax.Array:
    """The model's score per transition, shaped like the batch: ``(B,)``, or ``(B, L)`` for
    windows (``starts``: their episode-start flags), which a recurrent model unrolls from zero
    state, reset at episode starts."""
    if spec.state_outputs:
        out = unroll(spec, params, inputs, starts)
        (score,) = (v for k, v in out.items() if k not in spec.state_outputs)
        return score.reshape(starts.shape)
    lead = next(iter(inputs.values())).shape[:1 if starts is None else 2]
    flat = {k: v.reshape(-1, *v.shape[len(lead):]) for k, v in inputs.items()}
    return spec.fn.apply(params, flat).reshape(lead)


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

    feeder: ClassVar[type] = AdversarialReplayFeeder
    loss: ClassVar[str] = "bce"
    #: the penalty term is ``gradient_penalty_scale * gradient_penalty * mean |d logit / d x|^2``
    gradient_penalty_scale: ClassVar[float] = 1.0
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
        recurrent = [role for role, spec in self.disc_specs.items() if spec.state_outputs]
        if recurrent and not getattr(params, "sequence_length", None):
            raise ValueError(f"the {recurrent[0]} model {type(self.disc_specs[recurrent[0]].model).__name__} is "
                             "recurrent: set sequence_length (and burn_in) so it scores windows of consecutive steps")

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
        """The discriminator's logit per transition (the model's output), shaped like ``reward``."""
        spec = self.disc_specs["discriminator"]
        return logits_of(spec, disc["discriminator"], discriminator_inputs(spec, batch), window_starts(batch))

    def loss_weights(self, batch) -> jax.Array:
        """1 per transition; for ``(B, L)`` windows 0 on padding and on the ``burn_in`` steps
        that only warm up a recurrent model's state."""
        if batch["reward"].ndim == 1:
            return jnp.ones_like(batch["reward"])
        return batch["mask"] * (jnp.arange(batch["reward"].shape[1]) >= self.params.burn_in)

    def generator_reward(self, disc, gen_state, batch, logit: jax.Array) -> jax.Array:
        return imitation_reward(logit, self.reward_kind)

    def _disc_loss(self, params, gen_state, policy, expert):
        disc, absorbing = params
        p = self.params
        w_expert, w_policy = self.loss_weights(expert), self.loss_weights(policy)
        expert_logit = self.disc_logits(disc, gen_state, expert)
        policy_logit = self.disc_logits(disc, gen_state, policy)
        loss = (weighted_mean(expert_loss(self.loss, expert_logit), w_expert)
                + weighted_mean(policy_loss(self.loss, policy_logit), w_policy))
        # the absorbing state appears as often as terminations in each batch
        loss += (weighted_mean(expert["terminated"], w_expert) * expert_loss(self.loss, absorbing)
                 + weighted_mean(policy["terminated"], w_policy) * policy_loss(self.loss, absorbing))
        penalty = jnp.float32(0.0)
        if p.gradient_penalty:
            spec = self.disc_specs["discriminator"]
            inputs = {k: v for k, v in discriminator_inputs(spec, expert).items() if k not in spec.state_outputs}

            def total_logit(x):
                return jnp.sum(w_expert * self.disc_logits(disc, gen_state, _with_inputs(expert, spec, x)))

            grads = jax.grad(total_logit)(inputs)
            lead = w_expert.shape
            sq = sum(jnp.sum(g.reshape(*lead, -1) ** 2, axis=-1) for g in grads.values())
            penalty = weighted_mean(sq, w_expert)
            loss += self.gradient_penalty_scale * p.gradient_penalty * penalty
        metrics = {"disc_loss": loss, "expert_logit": weighted_mean(expert_logit, w_expert),
                   "policy_logit": weighted_mean(policy_logit, w_policy),
                   "expert_accuracy": weighted_mean(expert_logit > 0, w_expert),
                   "policy_accuracy": weighted_mean(policy_logit < 0, w_policy), "grad_penalty": penalty}
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

    def learned_reward(self, disc, absorbing, gen_state, policy) -> jax.Array:
        """What the generator learns from, per transition of ``policy``: the imitation reward of
        the discriminator ``disc``, the absorbing state's share at terminations, any task reward."""
        logit = self.disc_logits(disc, gen_state, policy)
        reward = self.generator_reward(disc, gen_state, policy, logit)
        absorbing_reward = imitation_reward(absorbing, self.reward_kind)
        reward = reward + absorbing_bonus(policy["terminated"], absorbing_reward, self.params.discount)
        return jax.lax.stop_gradient(self.mix_task_reward(policy["reward"], reward))

    # -- one step: discriminator, reward, generator ---------------------------------------------
    def _update_one(self, state: AdversarialState, batches):
        policy, expert = batches
        disc, opt, absorbing, metrics = self._disc_step(state, policy, expert)
        reward = self.learned_reward(disc, absorbing, state.gen, policy)
        gen, gen_metrics = super()._update_one(state.gen, {**policy, "reward": reward})
        metrics.update(gen_metrics, imitation_reward=weighted_mean(reward, self.loss_weights(policy)),
                       absorbing_logit=absorbing)
        return AdversarialState(gen, disc, opt, absorbing), metrics

    def mix_task_reward(self, task_reward: jax.Array, imitation: jax.Array) -> jax.Array:
        """The reward the generator learns from (AMP mixes in the environment's)."""
        return imitation


class AdversarialRollouts(Adversarial):
    """Mixin placed before an on-policy generator (``class GAILPPO(AdversarialRollouts, PPO)``).

    ``update(state, (rollout, index, expert))``: ``rollout`` is the generator's ``(T, N)``
    rollout; ``index`` ``(K, B)`` picks each discriminator minibatch's steps of the flattened
    rollout, ``expert`` holds ``K`` expert batches of ``B`` transitions.
    """

    feeder: ClassVar[type] = AdversarialRolloutFeeder
    prepare_batches = staticmethod(training_batch)
    prepare_rollout = staticmethod(training_batch)

    def _obs_shapes(self) -> dict:
        # the generator normalises what its own models read; discriminators read raw data
        gen_roles = [r for r in self.models if r not in self.disc_roles]
        return {k: v for r in gen_roles for k, v in self.models[r].input_shapes.items()}

    def __init__(self, params, models: Mapping[str, ModelSpec], action_space=None) -> None:
        recurrent = [role for role in self.disc_roles if models[role].state_outputs]
        if recurrent:
            raise ValueError(f"the {recurrent[0]} model {type(models[recurrent[0]].model).__name__} is recurrent; "
                             "recurrent discriminators train with the SAC generator (gail, amp), whose batches are "
                             "windows of consecutive steps")
        super().__init__(params, models, action_space)

    def _update(self, state: AdversarialState, batches):
        rollout, index, expert = batches
        T, N = rollout["reward"].shape
        steps = jax.tree_util.tree_map(lambda x: x.reshape(T * N, *x.shape[2:]), rollout)

        def disc_step(carry, x):
            idx, expert_batch = x
            policy = jax.tree_util.tree_map(lambda v: v[idx], steps)
            disc, opt, absorbing, metrics = self._disc_step(AdversarialState(state.gen, *carry), policy, expert_batch)
            return (disc, opt, absorbing), metrics

        (disc, opt, absorbing), metrics = jax.lax.scan(
            disc_step, (state.disc, state.disc_opt, state.absorbing_logit), (index, expert))
        metrics = jax.tree_util.tree_map(jnp.mean, metrics)
        reward = self.learned_reward(disc, absorbing, state.gen, steps).reshape(T, N)
        gen, gen_metrics = super()._update(state.gen, {**rollout, "reward": reward})
        metrics.update(gen_metrics, imitation_reward=jnp.mean(reward), absorbing_logit=absorbing)
        return AdversarialState(gen, disc, opt, absorbing), metrics


def window_starts(batch) -> jax.Array | None:
    """Episode-start flags of ``(B, L)`` windows (None for a batch of single transitions)."""
    return episode_starts(batch["terminated"], batch["truncated"]) if batch["reward"].ndim == 2 else None


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
