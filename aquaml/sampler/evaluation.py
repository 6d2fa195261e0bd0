"""Running a policy in seeded episodes: evaluations (the same episodes every time), recorded
datasets and expert labels.

:class:`Evaluator` runs the deterministic (or seeded stochastic) policy of a training run in a
separate environment. :class:`Policy` is a trained actor loaded from a run folder
(:func:`aquaml.starter.loading.load_policy`): its actions in the environment's units
(:meth:`Policy.predict`, and :meth:`Policy.env_actions`, the function ``aquaml export`` writes as
ONNX), its evaluator, and recorded episodes as a :class:`~aquaml.data.Dataset`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from aquaml.data.dataset import Dataset
from aquaml.deploy import NEXT, policy_inputs, policy_outputs
from aquaml.env import ActionUnits, EnvDriver, RLBaseEnv, action_metadata
from aquaml.sampler.collector import run_episodes

#: recorded episodes are numbered from here in the evaluation stream, apart from the episodes that
#: training evaluations and ``aquaml eval`` (0, 1, ...) and ``aquaml eval --held-out``
#: (:data:`EVAL_FIRST_EPISODE`, ...) play
COLLECT_FIRST_EPISODE = 2 * 10**6
#: the first episode ``aquaml eval --held-out`` plays, apart from training evaluations
EVAL_FIRST_EPISODE = 10**6


class Evaluator:
    """Runs seeded evaluation episodes with the deterministic policy.

    Args:
        env_factory: builds the evaluation environment (once, on first use).
        state_outputs: the actor's state outputs (name -> shape), fed back by the env.
        episode_length: the time limit per episode.
        act: the algorithm's jitted ``act``.
        actor_inputs: the observation names the actor reads.
        seed: the run seed (evaluation episode ``k`` is seeded from it).
    """

    def __init__(self, env_factory: Callable[[], RLBaseEnv], state_outputs: Mapping[str, tuple[int, ...]],
                 episode_length: int, act: Callable, actor_inputs: Sequence[str], seed: int) -> None:
        self.env_factory, self.state_outputs = env_factory, dict(state_outputs)
        self.episode_length, self.act, self.actor_inputs, self.seed = episode_length, act, tuple(actor_inputs), seed
        self._driver: EnvDriver | None = None

    def __call__(self, actor_params, episodes: int, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of ``episodes`` episodes, numbered from ``first_episode``."""
        returns, lengths, _ = self.run(actor_params, episodes, first_episode)
        return returns, lengths

    def run(self, actor_params, episodes: int, first_episode: int = 0, deterministic: bool = True,
            record: bool = False):
        """``(returns, lengths, records)`` of seeded episodes (see :func:`aquaml.sampler.collector.run_episodes`)."""
        if episodes <= 0:
            raise ValueError(f"episodes must be positive, got {episodes}")
        return run_episodes(self.driver, self.act, actor_params, jax.random.PRNGKey(self.seed), self.actor_inputs,
                            episodes, self.seed, first_episode, deterministic, record)

    @property
    def driver(self) -> EnvDriver:
        """The evaluation environment's driver (built on first use)."""
        if self._driver is None:
            env = self.env_factory()
            env.set_state_outputs(self.state_outputs)
            self._driver = EnvDriver(env, self.episode_length)
        return self._driver

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None


@dataclass
class Policy:
    """A trained actor and how to run it: what :func:`aquaml.starter.loading.load_policy` returns.

    ``action, state = policy.predict(obs, state)`` acts as ``aquaml eval`` does. ``act`` is the
    algorithm's jitted ``act`` and ``params`` what it needs from the training state (observation
    statistics included); ``env_factory`` builds the run's environment (an evaluation copy), on
    which the policy plays episodes seeded from ``seed`` as the run's evaluations do.
    """

    act: Callable
    params: Any
    inputs: tuple[str, ...]  #: the observation names the actor reads
    state_outputs: dict[str, tuple[int, ...]]  #: recurrent state outputs, fed back as observations
    obs_shapes: dict[str, tuple[int, ...]]  #: the observations its environment provides
    episode_length: int
    env_factory: Callable[[], RLBaseEnv]
    seed: int
    source: str = ""  #: where it came from (a run folder and checkpoint), for datasets' metadata
    #: how the environment turns actions into its units (None: it scales them inside ``step``)
    action_units: ActionUnits | None = None
    model: Any = None  #: the actor's Keras model (its layers' names)
    _key: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        """The observations the actor reads (name -> shape of one), without its recurrent state."""
        return {k: tuple(self.obs_shapes[k]) for k in self.inputs if k not in self.state_outputs}

    def predict(self, obs: Any, state: Mapping[str, Any] | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """The action for ``obs`` in the environment's units, as ``aquaml eval`` takes it, and the state.

        Args:
            obs: a dict of named observations, or an array for an actor that reads one; one
                observation (its own shape) or a batch (a leading axis).
            state: a recurrent actor's state as the previous call returned it; None (zeros) starts an
                episode.
            deterministic: the policy's mean action (as evaluations); False samples, from a key
                seeded with the run's seed.

        Returns ``(action, state)``: the action (a batch of them for a batch of observations; an
        int64 index for discrete actions) and the state to pass next time (None for a feed-forward
        actor).
        """
        inputs, single = policy_inputs(obs, state, self.observation_shapes, self.state_outputs)
        if self._key is None:  # made once: a key is a device array
            self._key = (jax.random.PRNGKey(self.seed),) * 2  # (deterministic calls', sampling's next)
        key = self._key[0] if deterministic else self._key[1]
        action_dict, _, key = self.act(self.params, inputs, key, deterministic=deterministic)
        if not deterministic:
            self._key = (self._key[0], key)
        action = np.asarray(action_dict["action"])
        action = self.action_units(action) if self.action_units is not None else action
        if action.dtype.kind in "iu":
            action = action.astype(np.int64)
        return policy_outputs(action, {k: np.asarray(action_dict[k]) for k in self.state_outputs}, single)

    def env_actions(self, inputs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The deterministic policy as one JAX function: named inputs (batch first, recurrent states
        included) to ``'action'`` in the environment's units and ``'next_<state>'`` per state. It
        is what ``aquaml export`` writes as ONNX; :meth:`predict` takes the same actions."""
        action_dict, _, _ = self.act(self.params, dict(inputs), jax.random.PRNGKey(0), deterministic=True)
        action, units = action_dict["action"], self.action_units
        if units is not None and units.discrete:
            action = action + units.start
        elif units is not None:
            action = units.rescale(action, jnp.asarray(units.low, jnp.float32), jnp.asarray(units.high, jnp.float32))
        return {"action": action, **{NEXT + k: action_dict[k] for k in self.state_outputs}}

    def evaluator(self, env_factory: Callable[[], RLBaseEnv] | None = None, seed: int | None = None) -> Evaluator:
        """An evaluator of this policy on ``env_factory``'s environments (default: its own)."""
        return Evaluator(env_factory or self.env_factory, self.state_outputs, self.episode_length, self.act,
                         self.inputs, self.seed if seed is None else seed)

    def actions(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Deterministic actions for a batch of named observations (feed-forward actors)."""
        n = len(next(iter(obs.values())))
        action, _, _ = self.act(self.params, {k: np.asarray(obs[k]).reshape(n, *self.obs_shapes[k]) for k in self.inputs},
                                jax.random.PRNGKey(0), deterministic=True)
        return np.asarray(action["action"])

    def record(self, episodes: int, deterministic: bool = True, first_episode: int = COLLECT_FIRST_EPISODE,
               env_factory: Callable[[], RLBaseEnv] | None = None, metadata: Mapping[str, Any] | None = None) -> Dataset:
        """``episodes`` seeded episodes as a dataset: every named observation the environment gives
        (recurrent states included, true final observations), actions, rewards and episode ends."""
        evaluator = self.evaluator(env_factory)
        try:
            _, _, records = evaluator.run(self.params, episodes, first_episode, deterministic, record=True)
            meta = {"source": self.source, "deterministic": deterministic, "first_episode": first_episode,
                    **action_metadata(evaluator.driver.env), **(metadata or {})}
        finally:
            evaluator.close()
        return Dataset.from_episodes(records, meta)
