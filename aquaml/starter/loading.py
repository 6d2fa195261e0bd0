"""Reading a trained run back, read-only: its agent and training state, its policy, its learned
reward, its replay buffer as a dataset.

This is the one place that turns a run folder into objects. Everything that uses a trained
run receives what is loaded here, not a directory: ``aquaml eval`` and ``aquaml collect``
(:mod:`aquaml.apps`), videos, DAgger's expert (a :class:`~aquaml.sampler.Policy`), a learned
reward (a :class:`~aquaml.env.RewardModel`). Nothing in the run folder is written: no log rows
are trimmed, no replay buffer is loaded into a learner, no episode is replayed, so a run that
is still training or that crashed can be used.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from aquaml.algorithm.feeders import feeder_of
from aquaml.algorithm.registry import resolve_algorithm
from aquaml.data import Dataset, DatasetError, load_dataset
from aquaml.env import RewardModel, action_metadata, make_env
from aquaml.sampler import Policy
from aquaml.starter.build import Agent, build_agent
from aquaml.starter.loop import training_state
from aquaml.starter.run_dirs import find_run
from aquaml.starter.run_folder import RunFolder, rebuild_inputs
from aquaml.tools.checkpoint import load_npz


@dataclass
class LoadedRun:
    """A run's agent and the training state of its newest complete checkpoint."""

    folder: RunFolder
    config: dict
    agent: Agent
    state: Any
    checkpoint: Path

    def policy(self) -> Policy:
        """The run's actor: acting parameters, inputs, and the environment it plays in."""
        return agent_policy(self.agent, self.state, self.config["seed"], f"{self.folder.path} ({self.checkpoint.name})")

    def close(self) -> None:
        self.agent.env.close()

    def training_evaluation(self) -> tuple[int, float] | None:
        """``(steps, mean return)`` of the evaluation training ran with this checkpoint's weights
        (over episodes ``0 .. calculate_episodes - 1``), None if training saved it without one."""
        meta = json.loads((self.checkpoint / "meta.json").read_text())
        history = meta.get("eval_history") or []
        # steps as the loop counts them: env steps, or gradient steps for learners that step no env
        done = meta["env_steps"] if feeder_of(type(self.agent.algo)).steps_envs else meta["grad_steps"]
        return (int(history[-1][0]), float(history[-1][1])) if history and history[-1][0] == done else None


def agent_policy(agent: Agent, state: Any, seed: int, source: str = "") -> Policy:
    """The actor of ``agent`` with the acting parameters of the training ``state``."""
    return Policy(agent.algo.act, agent.algo.actor_params(state), agent.actor_inputs, agent.state_outputs,
                  {**agent.env.obs_info.shape_dict, **agent.state_outputs}, agent.episode_length, agent.env_factory,
                  seed, source, agent.env.action_units, agent.models["actor"].model)


def load_run(run_dir: str | Path) -> LoadedRun:
    """The run in ``run_dir``, rebuilt from its ``config.json`` with the newest complete checkpoint's state.

    ``run_dir`` may also be a folder of runs (its newest run) or ``<folder>/latest``, as everywhere
    a run folder is taken (:func:`~aquaml.starter.run_dirs.find_run`).

    Raises ``ValueError`` for a run without an actor (a generative model such as the VAE's) and
    ``FileNotFoundError`` for a run that has saved no complete checkpoint yet.
    """
    folder = RunFolder.open(run_dir)
    config = folder.config
    algo = resolve_algorithm(config.get("algo_class") or config["algo"])
    if not feeder_of(algo).needs_env:
        raise ValueError(f"{folder.path} is a {algo.name} run: a generative model of dataset fields, with no actor "
                         "to act with or export")
    path = folder.latest_checkpoint()
    env, models, algo, params = rebuild_inputs(config, folder.path)
    agent = build_agent(env, models, algo, params)
    state = training_state(agent.algo.init_state(jax.random.PRNGKey(0)), load_npz(path / "state.npz"))
    return LoadedRun(folder, config, agent, state, path)


def load_policy(run_dir: str | Path) -> Policy:
    """The policy of the run in ``run_dir`` (newest complete checkpoint)."""
    run = load_run(run_dir)
    run.close()
    return run.policy()


def reward_scorer(run_dir: str | Path, role: str = "discriminator"):
    """The jitted ``g`` of the run's ``role`` model: named inputs (batch first) -> one value per row."""
    run = load_run(run_dir)
    run.close()
    return _scorer(run, role)


def _scorer(run: LoadedRun, role: str):
    spec, params = run.agent.models[role], run.agent.algo.model_params(run.state)[role]
    apply = jax.jit(lambda p, inputs: spec.fn.apply(p, inputs).reshape(-1))
    return lambda inputs: np.asarray(apply(params, inputs))


def load_reward(run_dir: str | Path, role: str = "discriminator", scale: float | str = "auto") -> RewardModel:
    """The learned reward of the run in ``run_dir`` (AIRL's ``'discriminator'``).

    ``scale='auto'`` divides ``g`` by its standard deviation over the transitions the run learned
    from (its checkpointed replay buffer and its dataset); a positive number multiplies ``g``.
    """
    run_dir = str(find_run(run_dir).resolve())  # the workers' scorers open this run, not a newer one
    run = load_run(run_dir)
    run.close()
    if role not in run.agent.models:
        raise ValueError(f"{run_dir} has no {role!r} model; its roles are {', '.join(run.agent.models)}")
    spec = run.agent.models[role]
    if spec.state_outputs:
        raise ValueError(f"the {role} model of {run_dir} is recurrent; a learned reward reads single transitions")
    shapes = {k: tuple(v) for k, v in spec.input_shapes.items()}
    make_scorer = functools.partial(reward_scorer, run_dir, role)
    if scale == "auto":
        g = _scorer(run, role)(_inputs_of(_seen_transitions(run), shapes))
        scale = 1.0 / (float(np.std(g)) + 1e-8)
    elif not (isinstance(scale, (int, float)) and scale > 0):
        raise ValueError(f"scale must be 'auto' or a positive number, got {scale!r}")
    return RewardModel(shapes, float(scale), make_scorer, run_dir)


def _seen_transitions(run: LoadedRun) -> dict[str, np.ndarray]:
    """Transitions the run learned from: its replay buffer (if checkpointed) and its dataset."""
    parts = []
    try:
        parts.append(replay_dataset(run.folder.path).transitions())
    except DatasetError:  # an on-policy generator keeps no buffer
        pass
    path = run.config.get("dataset", {}).get("path")
    if path:
        data = load_dataset(path, max_episode_steps=run.agent.episode_length)
        first = run.config.get("parameters", {}).get("max_episodes")  # the episodes the run learned from
        parts.append((data.select(range(first)) if first else data).transitions())
    if not parts:
        raise ValueError(f"{run.folder.path} keeps no transitions to set the reward's scale from; give scale=<number>")
    keys = set.intersection(*(set(p) for p in parts))
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _inputs_of(transitions: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """A reward model's named inputs from flat transitions (``obs/<name>``, ``next_obs/<name>``, ``action``)."""
    inputs = {}
    for name, shape in shapes.items():
        key = "action" if name == "action" else f"obs/{name}"
        if key not in transitions:
            key = f"next_obs/{name[len('next_'):]}"
        inputs[name] = transitions[key].reshape(-1, *shape).astype(np.float32)
    return inputs


def replay_dataset(run_dir: str | Path) -> Dataset:
    """The replay buffer of a run's newest checkpoint as episodes, oldest first."""
    folder = RunFolder.open(run_dir)
    path = folder.latest_checkpoint()
    if not (path / "buffer.npz").exists():
        raise DatasetError(f"{path} holds no replay buffer (an on-policy run, or save_buffer=False)")
    saved = load_npz(path / "buffer.npz")
    size, ptr, capacity = int(saved["size"]), int(saved["ptr"]), int(saved["capacity"])
    order = np.arange(size)
    if size == capacity:  # the ring wrapped: its oldest transition sits at ptr
        order = np.roll(order, -ptr)
    flat = {k[len("data/"):]: v[order] for k, v in saved.items() if k.startswith("data/")}
    config = folder.config
    env = make_env(config["env"]) if isinstance(config.get("env"), str) else None
    meta = {"env": config.get("env"), "algo": config.get("algo"), "run_dir": str(folder.path.resolve()),
            "checkpoint": path.name, "source": "replay buffer", **(action_metadata(env) if env is not None else {})}
    if env is not None:
        env.close()
    return Dataset.from_transitions(flat, n_envs=int(config["parameters"].get("n_envs", 1)), metadata=meta)
