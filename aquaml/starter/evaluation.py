"""Deterministic evaluation: the same seeded episodes of a separate environment every time."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from aquaml.env import EnvDriver, RLBaseEnv
from aquaml.sampler.collector import run_episodes


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

    @classmethod
    def for_agent(cls, agent, seed: int, env_factory: Callable[[], RLBaseEnv] | None = None) -> "Evaluator":
        """The evaluator of a built :class:`aquaml.starter.build.Agent` (on ``env_factory``'s
        environments if given, else on copies of the agent's)."""
        return cls(env_factory or agent.env_factory, agent.state_outputs, agent.episode_length, agent.algo.act,
                   agent.actor_inputs, seed)

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


def load_state(run_dir):
    """A run's agent and training state from its newest complete checkpoint, read-only.

    Nothing in the run folder is written. Returns ``(agent, state, checkpoint path)``.
    """
    from aquaml.starter.build import build_agent
    from aquaml.starter.run_folder import RunFolder, rebuild_inputs
    from aquaml.tools.checkpoint import arrays_to_tree, load_npz

    folder = RunFolder.open(run_dir)
    env, models, algo, params = rebuild_inputs(folder.config, folder.path)
    agent = build_agent(env, models, algo, params)
    path = folder.latest_checkpoint()
    saved = load_npz(path / "state.npz")
    template = agent.algo.init_state(jax.random.PRNGKey(0))
    state = arrays_to_tree(template, {k[len("algo"):]: v for k, v in saved.items() if k.startswith("algo")})
    return agent, state, path


def load_policy(run_dir) -> tuple[Evaluator, Any, Path]:
    """A run's evaluator and acting parameters from its newest complete checkpoint, read-only.

    Nothing in the run folder is written: no log rows are trimmed, no replay buffer is
    loaded, no episode is replayed; a run that is still training or that crashed can be
    evaluated. Returns ``(evaluator, actor_params, checkpoint path)``.
    """
    from aquaml.starter.run_folder import RunFolder

    agent, state, path = load_state(run_dir)
    evaluator = Evaluator.for_agent(agent, RunFolder.open(run_dir).config["seed"])
    agent.env.close()
    return evaluator, agent.algo.actor_params(state), path
