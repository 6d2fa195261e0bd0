"""``RLTaskStarter``: the seed's entry point, wiring the parts of a training run together.

Reading order: :mod:`~aquaml.starter.topology` (which process does what under MPI),
:mod:`~aquaml.starter.build` (environment, models, algorithm), :mod:`~aquaml.algorithm.feeders`
(replay buffer, rollout or dataset), :mod:`~aquaml.starter.loop` (the epochs),
:mod:`~aquaml.starter.session` (the run folder: config, checkpoints, resume, standard hooks) and
:mod:`~aquaml.starter.hooks` (evaluation, logs, console, checkpoints).

The seed's attribute names (``starter.env``, ``starter.buffer``, ``starter.env_steps``, ...) are
on :class:`aquaml.seed.starter.RLTaskStarter.RLTaskStarter`, which ``aquaml.RLTaskStarter`` is.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from aquaml.algorithm import SAC
from aquaml.algorithm.feeders import feeder_of
from aquaml.algorithm.parameters import epochs_for
from aquaml.algorithm.registry import algorithm_reference
from aquaml.env import EnvDriver, env_factory
from aquaml.env.learned_reward import learned_reward_factory
from aquaml.sampler import Collector, Evaluator, episode_seed
from aquaml.algorithm.interface import check_parameters
from aquaml.starter.build import build_agent, training_dataset
from aquaml.starter.hooks import EvaluationHook
from aquaml.starter.loading import load_policy, load_reward
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.starter.run_dirs import find_run
from aquaml.starter.run_folder import RunFolder, rebuild_inputs
from aquaml.starter.session import RunSession, dataset_record, describe, resolve_dataset_path
from aquaml.starter.topology import Topology, resolve_workers
from aquaml.tools.imports import optional_import, portable_reference, qualname


@dataclass
class RunSummary:
    """What :meth:`RLTaskStarter.run` returns."""

    final_eval_return: float
    eval_history: list[tuple[int, float]]  #: (env steps, mean deterministic return)
    run_dir: Path
    env_steps: int
    grad_steps: int
    wall_time_s: float  #: everything: training, evaluation, logging, checkpoints
    train_returns: list[float] = field(default_factory=list)
    train_time_s: float = 0.0  #: collecting and learning only (compilation included)


class RLTaskStarter:
    """Train an agent: the seed's entry point.

    Args:
        env: an ``RLBaseEnv`` instance (seed style), a Gymnasium id such as ``'Pendulum-v1'``,
            a ``gymnasium.Env`` or a factory returning either.
        model_class_dict: ``{'actor': cls, 'qf1': cls, 'qf2': cls}``; missing roles get the
            default MLPs (``hidden_sizes``, ``learning_rate`` parameters).
        algo: the algorithm class (``SAC2`` / ``SAC``, ``TD3``, ``PPO`` or your own, see
            ``docs/new_algorithm.md``).
        algo_hyperparameter: its parameters, e.g. ``SAC2_parameter(...)``; None for defaults.
        mpi_comm: an MPI communicator (``MPI.COMM_WORLD``). With N > 1 ranks, rank 0 learns and
            ranks 1..N-1 step the environments (``n_envs`` in all, at least one per sampler);
            every rank runs the same script, and ``run()`` returns the summary on rank 0 and
            None on the others. An error on any rank ends every rank.
        name: run name, the folder under ``run_root``; default ``'<algo>_<env>'``.
        run_root: where run folders are created.
        resume: a run folder to continue from its latest checkpoint, in place.
        progress: what training prints: False (0) nothing; True (1) a line per evaluation, under a
            progress bar on a terminal; 2 a table of each log row (see :class:`~aquaml.starter.ProgressHook`).
        n_workers: sampler processes stepping the ``n_envs`` environments over shared memory
            (0: in this process). The same seed gives the same run either way.
        envs_per_worker: alternative to ``n_workers``: ``n_workers = ceil(n_envs / envs_per_worker)``.
        mpi_transport: ``'auto'`` (MPI-3 shared memory on the learner's node, messages to other
            nodes) or ``'messages'`` (messages everywhere); default ``$AQUAML_MPI_TRANSPORT`` or auto.
        learners: data-parallel learners under MPI (each with its own samplers; gradients averaged).
        hooks: extra :class:`~aquaml.starter.loop.Hook` objects, called on the process that writes
            the run after the evaluation and before logs, console and checkpoints (so the columns
            they add are logged, and a stop they request gets its checkpoint).
        reward_model: a run folder whose learned reward (AIRL's ``'discriminator'``) replaces the
            reward of the training environments (Gymnasium envs; :class:`aquaml.env.LearnedReward`);
            evaluations keep the task's own reward.
        preset: what ``config.json`` records under ``'preset'`` of the settings the parameters were
            made from (:meth:`aquaml.algorithm.presets.Preset.record`; ``aquaml train`` passes it).
    """

    def __init__(self, env, model_class_dict: Mapping[str, Any] | None = None, algo=SAC,
                 algo_hyperparameter=None, mpi_comm=None, name: str | None = None, *,
                 run_root: str | Path = "runs", resume: str | Path | None = None,
                 progress: bool | int = True, n_workers: int = 0, envs_per_worker: int | None = None,
                 mpi_transport: str | None = None, learners: int = 1, hooks: Sequence[Hook] = (),
                 reward_model: str | Path | None = None, preset: Mapping[str, Any] | None = None) -> None:
        self.preset = dict(preset) if preset is not None else None
        # a module found from the current directory is recorded by its file: the run works from anywhere
        self._env_spec = portable_reference(env) if isinstance(env, str) else env
        self.reward_model = str(find_run(reward_model).resolve()) if reward_model is not None else None
        self.topology = Topology(mpi_comm, learners)
        self._reward: Any = None  # the loaded learned reward, on first use
        if self.topology.is_sampler_rank:
            return  # run() serves this group's learner
        self.collector = None
        with self.topology.fatal_on_every_rank(self._sampler_pool):
            if resume is not None and self.topology.learner_comm is not None:
                raise ValueError("resume is not available with learners > 1: only learner 0's state is "
                                 "checkpointed; resume with one learner, or start a new run")
            self.params = self._checked_parameters(algo, check_parameters(algo, algo_hyperparameter), n_workers,
                                                   envs_per_worker)
            self.algo_cls, self.feeder_cls = algo, feeder_of(algo)
            self.agent = build_agent(self._training_env(), model_class_dict, algo, self.params,
                                     self.topology.gradient_averaging())
            self.name = name or f"{algo.name}_{self.agent.env_name}"
            self.n_workers = resolve_workers(self.params.n_envs, n_workers, envs_per_worker)
            self._build_loop(mpi_transport or os.environ.get("AQUAML_MPI_TRANSPORT", "auto"))
            self.session = RunSession(self.name, run_root, self.loop, self.feeder, self.agent.models, progress,
                                      self.dataset)
            self._hooks = list(hooks)
            if resume is not None:
                self.session.resume(resume, algo.name, self.params.dataset if self.dataset is not None else "")
            else:
                self._driver.reset(0)  # validates the environment's first observation before any training work

    def _checked_parameters(self, algo, params, n_workers: int, envs_per_worker: int | None):
        """``params`` checked against what the run can do, with derived settings filled in."""
        top, feeder = self.topology, feeder_of(algo)
        if not feeder.steps_envs and (top.mpi_comm is not None or n_workers or envs_per_worker):
            raise ValueError(f"{algo.name} learns from a dataset and steps no environments: run it in one "
                             "process, without mpirun, n_workers or envs_per_worker")
        if self.reward_model is not None and (feeder.uses_dataset == "required" or not feeder.steps_envs):
            raise ValueError(f"reward_model replaces an environment's reward; {algo.name} learns from a dataset")
        if top.learner_comm is not None and params.overlap:
            MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

            if MPI.Query_thread() != MPI.THREAD_MULTIPLE:
                raise ValueError("overlap with learners > 1 runs MPI from two threads, which this MPI "
                                 "library does not allow (no MPI_THREAD_MULTIPLE); set overlap=False")
        if top.mpi_comm is not None:
            if n_workers or envs_per_worker:
                raise ValueError("under MPI the sampler ranks step the environments; drop n_workers/envs_per_worker")
            if params.n_envs < top.samplers:
                print(f"aquaml: {top.samplers} sampler ranks: n_envs {params.n_envs} -> {top.samplers} (one env per "
                      "sampler; set n_envs to choose)", file=sys.stderr, flush=True)
                params = params.replace(n_envs=top.samplers)
        return resolve_dataset_path(params)

    def _build_loop(self, mpi_transport: str) -> None:
        """The dataset, collector, feeder, evaluator and training loop of the built agent."""
        params, agent, top, feeder = self.params, self.agent, self.topology, self.feeder_cls
        # Each learner's group collects its own data (learner 0 as a single learner would);
        # the models start from params.seed on every learner.
        data_seed = params.seed if top.group == 0 else episode_seed(params.seed, 2, top.group)
        self._driver = EnvDriver(agent.env, agent.episode_length)
        reads_data = feeder.uses_dataset == "required" or (feeder.uses_dataset == "optional" and params.dataset)
        self.dataset = training_dataset(params, agent) if reads_data else None
        if feeder.steps_envs:  # otherwise the environment only serves evaluations
            self.collector = self._make_collector(data_seed, mpi_transport)
        self.feeder = feeder(self.algo, params, fields=self.collector.fields() if self.collector else None,
                             dataset=self.dataset, expert=self._expert() if feeder.uses_expert else None)
        # with a learned reward, evaluations still report the task's own return
        self.evaluator = Evaluator(env_factory(self._env_spec) if self.reward_model is not None else agent.env_factory,
                                   agent.state_outputs, agent.episode_length, agent.algo.act, agent.actor_inputs,
                                   params.seed)
        init_key, act_key = jax.random.split(jax.random.PRNGKey(params.seed))
        if top.group:
            act_key = jax.random.fold_in(act_key, top.group)
        rng = np.random.Generator(np.random.PCG64(data_seed))
        self.loop = TrainingLoop(params, self.algo, self.feeder, self.collector, self.algo.init_state(init_key),
                                 act_key, rng)

    def _expert(self):
        """The policy of the run ``params.expert`` names, set to play in this run's environment."""
        if not self.params.expert:
            raise ValueError(f"{self.algo_cls.name} needs an expert: set expert=RUN_DIR (a trained run folder)")
        agent = self.agent
        return replace(load_policy(self.params.expert), env_factory=agent.env_factory,
                       episode_length=agent.episode_length, seed=self.params.seed)

    def _training_env(self):
        """The environment the agent learns in: the given one, or it with a learned reward."""
        if self.reward_model is None:
            return self._env_spec
        if self._reward is None:
            self._reward = load_reward(self.reward_model)
        return learned_reward_factory(self._env_spec, self._reward)

    def _make_collector(self, data_seed: int, mpi_transport: str) -> Collector:
        agent, params, driver = self.agent, self.params, self._driver
        # In-process, env 0 is the given instance (the seed's scripts keep a handle on it);
        # workers build every env from copies.
        env_fns = [agent.env_factory for _ in range(params.n_envs)]
        if self.n_workers == 0:
            env_fns[0] = lambda: agent.env
        obs_fields = {k: (s, driver.dtypes[k]) for k, s in driver.shapes.items()}
        return Collector(env_fns, agent.episode_length, obs_fields, agent.state_outputs, self.algo.act,
                         agent.actor_inputs, self.algo.action_field, self.algo.random_action, data_seed,
                         self.algo.extra_fields, n_workers=self.n_workers, overlap=params.overlap,
                         mpi_comm=self.topology.mpi_comm, mpi_transport=mpi_transport)

    def _sampler_pool(self):
        """The pool stepping the environments, None before it is built."""
        return getattr(self.collector, "pool", None)

    # -- what the parts expose ------------------------------------------------------------
    @property
    def algo(self):
        """The built algorithm (its jitted ``act`` and ``update``)."""
        return self.agent.algo

    @property
    def state(self):
        """The algorithm's training state (parameters, optimizer states, keys)."""
        return self.loop.state

    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir

    @property
    def config_env(self) -> str | None:
        """The environment as ``config.json`` records it: a Gymnasium id (``module:Id``, a local module by its
        file's absolute path) or an importable class."""
        env = self._env_spec
        return env if isinstance(env, str) else qualname(env)

    def _describe(self) -> dict:
        agent = self.agent
        extra = {"reward_model": self.reward_model} if self.reward_model is not None else {}
        if self.preset is not None:
            extra["preset"] = self.preset
        return describe(self.algo_cls.name, algorithm_reference(self.algo_cls), self.config_env, self.name,
                        self.params, agent.model_classes,
                        dataset_record(self.params.dataset, self.dataset) if self.dataset is not None else None,
                        env_name=agent.env_name, episode_length=agent.episode_length,
                        obs_info=agent.env.obs_info.to_json(),
                        state_outputs={k: list(v) for k, v in agent.state_outputs.items()}, **extra)

    # -- training ---------------------------------------------------------------------
    def run(self) -> RunSummary | None:
        """Train for the remaining epochs; returns the summary of the whole run.

        Under MPI, sampler ranks step environments until the learner finishes and return None;
        the learner closes the samplers at the end, so ``run()`` is called once per job.
        """
        top = self.topology
        if top.is_sampler_rank:
            top.serve(env_factory(self._training_env()))
            return None
        with top.fatal_on_every_rank(self._sampler_pool):
            self.loop.can_stop_early = top.learner_comm is None
            if top.writes_run:  # other learners only train
                # data-parallel learners would have to agree on the epoch of a STOP file: they train to the end
                self.session.start(self._describe(), [EvaluationHook(self.evaluator, self.params.calculate_episodes),
                                                      *self._hooks], stop_file=top.learner_comm is None)
            self.loop.run()
            if top.mpi_comm is not None:
                self.close()
        return self.summary()

    def close(self) -> None:
        """Stop the sampler workers and free their shared memory (also done at exit)."""
        if self.collector is not None:
            self.collector.close()
        self.evaluator.close()
        self.feeder.close()

    def evaluate(self, episodes: int | None = None, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic returns and lengths over ``episodes`` seeded episodes of a separate env."""
        episodes = episodes if episodes is not None else self.params.calculate_episodes
        return self.evaluator(self.algo.actor_params(self.state), episodes, first_episode)

    def summary(self) -> RunSummary:
        c = self.loop.counters
        final = c.eval_history[-1][1] if c.eval_history else float("nan")
        return RunSummary(final, list(c.eval_history), self.run_dir, c.env_steps, c.grad_steps, c.wall_time_s,
                          list(c.train_returns), c.train_time_s)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint now (the loop writes them every ``store_model_times`` displays)."""
        return self.session.save_checkpoint()

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, resume: bool = True, progress: bool | int = True,
                     steps: int | None = None, n_workers: int = 0, **overrides) -> "RLTaskStarter":
        """Rebuild a run from its ``config.json`` (Gymnasium ids and importable classes only).

        The classes ``config.json`` names are imported (see :mod:`aquaml.starter.run_folder`).

        Args:
            resume: load the latest checkpoint and continue in ``run_dir``.
            steps: new total of environment steps (sets ``n_epochs``).
            n_workers: sampler processes (the run is the same with any number, except with
                ``overlap``, where the two acting halves follow the workers).
            overrides: parameter changes.
        """
        folder = RunFolder.open(run_dir)
        config = folder.config
        env, models, algo, params = rebuild_inputs(config, folder.path, **overrides)
        if steps is not None:
            if steps <= 0:
                raise ValueError(f"steps must be positive, got {steps}")
            params = params.replace(n_epochs=epochs_for(params, steps))
        return cls(env, models, algo, params, name=config["name"], run_root=folder.path.parent.parent,
                   resume=folder.path if resume else None, progress=progress, n_workers=n_workers,
                   reward_model=config.get("reward_model"), preset=config.get("preset"))
