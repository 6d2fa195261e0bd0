"""``RLTaskStarter``: the seed's entry point, wiring the parts of a training run together.

Reading order: :mod:`~aquaml.starter.topology` (which process does what under MPI),
:mod:`~aquaml.starter.build` (environment, models, algorithm), :mod:`~aquaml.starter.learners`
(replay buffer or rollout), :mod:`~aquaml.starter.loop` (the epochs), :mod:`~aquaml.starter.hooks`
(evaluation, logs, console, checkpoints) and :mod:`~aquaml.starter.run_folder` (files on disk).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from aquaml.algorithm import SAC
from aquaml.algorithm.parameters import epochs_for
from aquaml.algorithm.registry import algorithm_reference
from aquaml.env import EnvDriver, env_factory
from aquaml.env.learned_reward import learned_reward_factory
from aquaml.sampler import Collector, episode_seed
from aquaml.starter.build import build_agent, check_parameters, training_dataset
from aquaml.starter.evaluation import Evaluator
from aquaml.starter.hooks import CheckpointHook, EvaluationHook, LogHook, ProgressHook
from aquaml.starter.learners import DATASET_KINDS, LEARNERS
from aquaml.starter.loop import Hook, TrainingLoop
from aquaml.starter.run_folder import RunFolder, rebuild_inputs
from aquaml.starter.topology import Topology, resolve_workers
from aquaml.tools.imports import qualname
from aquaml.tools.versions import package_versions


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
        progress: show the progress bar and console tables.
        n_workers: sampler processes stepping the ``n_envs`` environments over shared memory
            (0: in this process). The same seed gives the same run either way.
        envs_per_worker: alternative to ``n_workers``: ``n_workers = ceil(n_envs / envs_per_worker)``.
        mpi_transport: ``'auto'`` (MPI-3 shared memory on the learner's node, messages to other
            nodes) or ``'messages'`` (messages everywhere); default ``$AQUAML_MPI_TRANSPORT`` or auto.
        learners: data-parallel learners under MPI (each with its own samplers; gradients averaged).
        hooks: extra :class:`~aquaml.starter.loop.Hook` objects called after the standard ones
            (evaluation, logs, console, checkpoints) on the process that writes the run.
        reward_model: a run folder whose learned reward (AIRL's ``'discriminator'``) replaces the
            reward of the training environments (Gymnasium envs; :class:`aquaml.env.LearnedReward`);
            evaluations keep the task's own reward.
    """

    def __init__(self, env, model_class_dict: Mapping[str, Any] | None = None, algo=SAC,
                 algo_hyperparameter=None, mpi_comm=None, name: str | None = None, *,
                 run_root: str | Path = "runs", resume: str | Path | None = None,
                 progress: bool = True, n_workers: int = 0, envs_per_worker: int | None = None,
                 mpi_transport: str | None = None, learners: int = 1, hooks: Sequence[Hook] = (),
                 reward_model: str | Path | None = None) -> None:
        self._env_spec = env
        self.reward_model = str(Path(reward_model).resolve()) if reward_model is not None else None
        self.topology = Topology(mpi_comm, learners)
        if self.topology.is_sampler_rank:
            return  # run() serves this group's learner
        self.collector = None
        with self.topology.fatal_on_every_rank(self._sampler_pool):
            self._build(model_class_dict, algo, algo_hyperparameter, name, run_root, resume, progress,
                        n_workers, envs_per_worker, mpi_transport or os.environ.get("AQUAML_MPI_TRANSPORT", "auto"),
                        hooks)

    def _build(self, model_class_dict, algo, params, name, run_root, resume, progress, n_workers, envs_per_worker,
               mpi_transport, hooks) -> None:
        top = self.topology
        params = check_parameters(algo, params)
        offline = algo.kind == "offline"
        if offline:
            if top.mpi_comm is not None or n_workers or envs_per_worker:
                raise ValueError(f"{algo.name} learns from a dataset and steps no environments: run it in one "
                                 "process, without mpirun, n_workers or envs_per_worker")
        if top.learner_comm is not None:
            if resume is not None:
                raise ValueError("resume is not available with learners > 1: only learner 0's state is "
                                 "checkpointed; resume with one learner, or start a new run")
            if params.overlap:
                from mpi4py import MPI

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
        if getattr(params, "dataset", "") and not params.dataset.startswith("minari:"):
            params = params.replace(dataset=str(Path(params.dataset).resolve()))
        self.params, self.algo_cls, self.progress = params, algo, progress
        if self.reward_model is not None and (offline or algo.kind in DATASET_KINDS):
            raise ValueError(f"reward_model replaces an environment's reward; {algo.name} learns from a dataset")
        self.agent = build_agent(self._training_env(), model_class_dict, algo, params, top.gradient_averaging())
        self.name = name or f"{algo.name}_{self.agent.env_name}"
        self.n_workers = resolve_workers(params.n_envs, n_workers, envs_per_worker)
        # Each learner's group collects its own data (learner 0 as a single learner would);
        # the models start from params.seed on every learner.
        data_seed = params.seed if top.group == 0 else episode_seed(params.seed, 2, top.group)
        driver = EnvDriver(self.env, self.episode_length)
        # dagger starts from a dataset only when one is given (else from the expert's episodes)
        uses_data = algo.kind in DATASET_KINDS or (algo.kind == "dagger" and params.dataset)
        self.dataset = training_dataset(params, self.agent) if uses_data else None
        if not offline:  # offline: the environment only serves evaluations
            self.collector = self._make_collector(driver, data_seed, mpi_transport)
        fields = self.collector.fields() if self.collector is not None else None
        self.learner = LEARNERS[algo.kind](self.algo, fields, params, self.dataset, agent=self.agent)
        # with a learned reward, evaluations still report the task's own return
        self.evaluator = Evaluator.for_agent(self.agent, params.seed,
                                             env_factory(self._env_spec) if self.reward_model is not None else None)
        init_key, act_key = jax.random.split(jax.random.PRNGKey(params.seed))
        if top.group:
            act_key = jax.random.fold_in(act_key, top.group)
        rng = np.random.Generator(np.random.PCG64(data_seed))
        self.loop = TrainingLoop(params, self.algo, self.learner, self.collector, self.algo.init_state(init_key),
                                 act_key, rng)
        self._extra_hooks = list(hooks)
        self._run_root = Path(run_root)
        self.folder: RunFolder | None = None
        if resume is not None:
            self._restore(RunFolder.open(resume))
        else:
            driver.reset(0)  # validates the environment's first observation before any training work

    def _training_env(self):
        """The environment the agent learns in: the given one, or it with a learned reward."""
        if self.reward_model is None:
            return self._env_spec
        return learned_reward_factory(self._env_spec, self.reward_model)

    def _make_collector(self, driver: EnvDriver, data_seed: int, mpi_transport: str) -> Collector:
        agent, params = self.agent, self.params
        # In-process, env 0 is the given instance (the seed's scripts keep a handle on it);
        # workers build every env from copies.
        env_fns = [agent.env_factory for _ in range(params.n_envs)]
        if self.n_workers == 0:
            env_fns[0] = lambda: agent.env
        obs_fields = {k: (s, driver.dtypes[k]) for k, s in driver.shapes.items()}
        return Collector(env_fns, agent.episode_length, obs_fields, self.state_outputs, self.algo.act,
                         agent.actor_inputs, self.algo.action_field, self.algo.random_action, data_seed,
                         self.algo.extra_fields, n_workers=self.n_workers, overlap=params.overlap,
                         mpi_comm=self.topology.mpi_comm, mpi_transport=mpi_transport)

    def _sampler_pool(self):
        """The pool stepping the environments, None before it is built."""
        return getattr(self.collector, "pool", None)

    # -- what the parts expose (the seed's scripts and the tests read these) ---------------
    env = property(lambda self: self.agent.env)
    env_name = property(lambda self: self.agent.env_name)
    models = property(lambda self: self.agent.models)
    model_classes = property(lambda self: self.agent.model_classes)
    algo = property(lambda self: self.agent.algo)
    state_outputs = property(lambda self: self.agent.state_outputs)
    episode_length = property(lambda self: self.agent.episode_length)
    action_space = property(lambda self: self.agent.action_space)
    world_comm = property(lambda self: self.topology.world_comm)
    mpi_comm = property(lambda self: self.topology.mpi_comm)
    learner_comm = property(lambda self: self.topology.learner_comm)
    is_sampler_rank = property(lambda self: self.topology.is_sampler_rank)
    writes_run = property(lambda self: self.topology.writes_run)
    run_dir = property(lambda self: self.folder.path if self.folder is not None else None)
    total_epochs = property(lambda self: self.params.n_epochs)
    epoch = property(lambda self: self.loop.counters.epoch)
    env_steps = property(lambda self: self.loop.counters.env_steps)
    grad_steps = property(lambda self: self.loop.counters.grad_steps)
    eval_history = property(lambda self: self.loop.counters.eval_history)
    train_returns = property(lambda self: self.loop.counters.train_returns)

    @property
    def state(self):
        """The algorithm's training state (parameters, optimizer states, keys)."""
        return self.loop.state

    @property
    def act_key(self):
        return self.loop.act_key

    @property
    def rng(self) -> np.random.Generator:
        return self.loop.rng

    @property
    def buffer(self):
        """The replay buffer of off-policy runs."""
        return self.learner.buffer

    @property
    def config_env(self) -> str | None:
        """The environment as ``config.json`` records it: a Gymnasium id or an importable class."""
        env = self._env_spec
        return env if isinstance(env, str) else qualname(env)

    def _describe(self) -> dict:
        return {
            "algo": self.algo_cls.name,
            "algo_class": algorithm_reference(self.algo_cls),
            "env": self.config_env,
            "env_name": self.env_name,
            "name": self.name,
            "parameters": self.params.to_dict(),
            "seed": self.params.seed,
            "episode_length": self.episode_length,
            "models": {role: (qualname(cls) if cls is not None else "default")
                       for role, cls in self.model_classes.items()},
            "obs_info": self.env.obs_info.to_json(),
            **({"dataset": self._dataset_record()} if self.dataset is not None else {}),
            **({"reward_model": self.reward_model} if self.reward_model is not None else {}),
            "state_outputs": {k: list(v) for k, v in self.state_outputs.items()},
            "versions": package_versions(),
            "created": datetime.now().isoformat(timespec="seconds"),
        }

    def _dataset_record(self) -> dict:
        """What ``config.json`` records of an offline run's data (a resume checks the digest)."""
        d = self.dataset
        return {"path": self.params.dataset, "episodes": d.n_episodes, "steps": d.n_steps,
                "return_mean": float(d.returns().mean()), "sha256": d.digest()}

    # -- training ---------------------------------------------------------------------
    def run(self) -> RunSummary | None:
        """Train for the remaining epochs; returns the summary of the whole run.

        Under MPI, sampler ranks step environments until the learner finishes and return None;
        the learner closes the samplers at the end, so ``run()`` is called once per job.
        """
        if self.is_sampler_rank:
            self.topology.serve(env_factory(self._training_env()))
            return None
        with self.topology.fatal_on_every_rank(self._sampler_pool):
            if self.folder is None and self.writes_run:
                self.folder = RunFolder.create(self._run_root, self.name, self._describe())
            # RUN_DIR/STOP ends training cleanly after the current epoch (one learner: data-parallel
            # learners would have to agree on the epoch, so they train to the end)
            if self.folder is not None and self.topology.learner_comm is None:
                self.loop.stop_file = self.folder.path / "STOP"
                self.loop.stop_file.unlink(missing_ok=True)  # a resume continues past an earlier stop
            self.loop.hooks = self._hooks()
            self.loop.run()
            if self.mpi_comm is not None:
                self.close()
        return self.summary()

    def _hooks(self) -> list[Hook]:
        """Evaluation, logs, console and checkpoints on the writing process; other learners only train."""
        if not self.writes_run:
            return []
        p = self.params
        return [EvaluationHook(self.evaluator, p.calculate_episodes), LogHook(self.folder.path),
                ProgressHook(self.name, self.progress), CheckpointHook(self.save_checkpoint, p.store_model_times),
                *self._extra_hooks]

    def close(self) -> None:
        """Stop the sampler workers and free their shared memory (also done at exit)."""
        if self.collector is not None:
            self.collector.close()
        self.evaluator.close()
        if hasattr(self.learner, "close"):  # a learner holding processes or envs of its own (DAgger's expert)
            self.learner.close()

    def evaluate(self, episodes: int | None = None, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic returns and lengths over ``episodes`` seeded episodes of a separate env."""
        episodes = episodes if episodes is not None else self.params.calculate_episodes
        return self.evaluator(self.algo.actor_params(self.state), episodes, first_episode)

    def summary(self) -> RunSummary:
        c = self.loop.counters
        final = c.eval_history[-1][1] if c.eval_history else float("nan")
        return RunSummary(final, list(c.eval_history), self.run_dir, c.env_steps, c.grad_steps, c.wall_time_s,
                          list(c.train_returns), c.train_time_s)

    # -- checkpoints ------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        arrays, meta = self.loop.state_dict()
        models = {role: (self.models[role].fn, p) for role, p in self.algo.model_params(self.state).items()}
        return self.folder.save_checkpoint(f"epoch_{self.loop.counters.epoch:08d}", state=arrays, meta=meta,
                                           models=models, extra=self.learner.checkpoint_files())

    def _restore(self, folder: RunFolder) -> None:
        folder.check_resumable(self.algo_cls.name, self.params.to_dict())
        if self.dataset is not None:
            recorded = folder.config.get("dataset", {}).get("sha256")
            if recorded != self.dataset.digest():
                raise ValueError(f"{self.params.dataset} changed since {folder.path} started training on it "
                                 "(its SHA-256 differs from config.json's): resuming would not continue the same run")
        path, arrays, meta = folder.load_checkpoint()
        self.loop.load_state_dict(arrays, meta)
        self.learner.restore(path)
        folder.truncate_progress(self.loop.counters.epoch)
        self.folder = folder

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, resume: bool = True, progress: bool = True,
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
                   reward_model=config.get("reward_model"))
