"""``RLTaskStarter``: builds environment, models and algorithm, then trains off-policy.

The loop is the seed's: an *epoch* collects ``update_interval`` environment steps into
the replay buffer, then runs ``update_times`` gradient steps as one compiled call. Every
``display_interval`` epochs it evaluates deterministically, logs and prints a table;
every ``store_model_times`` displays (and at the end) it writes a checkpoint.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import jax
import keras
import numpy as np
from tqdm.auto import tqdm

from aquaml.algorithm import SAC
from aquaml.algorithm.parameters import epochs_for
from aquaml.env import ActionSpace, EnvDriver, env_factory, make_env
from aquaml.model import MLPActor, MLPCritic, build_model
from aquaml.model.optimizers import gradients_transformed_by
from aquaml.sampler import Collector, episode_seed, evaluate
from aquaml.starter.learners import LEARNERS
from aquaml.tools.checkpoint import arrays_to_tree, latest_checkpoint, load_checkpoint, save_checkpoint, tree_to_arrays
from aquaml.tools.logger import RunLogger, format_table
from aquaml.tools.versions import package_versions

KEEP_CHECKPOINTS = 2
#: parameters that may differ when a run is resumed: they change how long and how often, not what
RESUMABLE_CHANGES = frozenset({"n_epochs", "display_interval", "calculate_episodes", "store_model_times"})


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


def _qualname(obj) -> str | None:
    """``module:qualname`` for classes that can be imported again later, else None."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = getattr(cls, "__module__", None)
    if module in (None, "__main__") or "<locals>" in cls.__qualname__:
        return None
    return f"{module}:{cls.__qualname__}"


def _truncate_progress(path: Path, env_steps: int) -> None:
    """Drop log rows written after the checkpoint a resumed run restarts from."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= env_steps]
    if len(kept) != len(rows):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(kept)


def _import(path: str):
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class RLTaskStarter:
    """Train an agent: the seed's entry point.

    Args:
        env: an ``RLBaseEnv`` instance (seed style), a Gymnasium id such as ``'Pendulum-v1'``,
            a ``gymnasium.Env`` or a factory returning either.
        model_class_dict: ``{'actor': cls, 'qf1': cls, 'qf2': cls}``; missing roles get the
            default MLPs (``hidden_sizes``, ``learning_rate`` parameters).
        algo: the algorithm class (``SAC2`` / ``SAC``).
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
    """

    def __init__(self, env, model_class_dict: Mapping[str, Any] | None = None, algo=SAC,
                 algo_hyperparameter=None, mpi_comm=None, name: str | None = None, *,
                 run_root: str | Path = "runs", resume: str | Path | None = None,
                 progress: bool = True, n_workers: int = 0, envs_per_worker: int | None = None,
                 mpi_transport: str | None = None, learners: int = 1) -> None:
        self._env_spec = env
        self._setup_mpi(mpi_comm, learners)
        if self.is_sampler_rank:
            return  # run() serves this group's learner
        with self._fatal_on_every_rank():
            self._build(env, model_class_dict, algo, algo_hyperparameter, name, run_root, resume, progress,
                        n_workers, envs_per_worker, mpi_transport or os.environ.get("AQUAML_MPI_TRANSPORT", "auto"))

    def _setup_mpi(self, comm, learners: int) -> None:
        """Split the ranks into ``learners`` groups, each a learner (the group's rank 0) and its samplers.

        Ranks ``0..learners-1`` learn; sampler ranks are dealt out to them in turn. Learners
        average their gradients (``learner_comm``); only world rank 0 writes the run folder.
        """
        self.world_comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.mpi_comm = self.world_comm  # this rank's group: the pool's communicator
        self.learner_comm, self.group = None, 0
        if not isinstance(learners, int) or learners < 1:
            raise ValueError(f"learners must be a positive integer, got {learners!r}")
        if self.world_comm is None:
            if learners > 1:
                raise ValueError(f"learners={learners} needs an MPI communicator with more ranks (mpirun)")
            return
        size, rank = comm.Get_size(), comm.Get_rank()
        if learners > 1:
            from mpi4py import MPI

            samplers = size - learners
            if samplers < learners or samplers % learners:
                raise ValueError(f"{size} ranks cannot serve {learners} learners: the {samplers} other ranks must be "
                                 f"a positive multiple of {learners} (one group of samplers per learner)")
            self.group = rank if rank < learners else (rank - learners) % learners
            self.mpi_comm = comm.Split(color=self.group, key=rank)
            learner_comm = comm.Split(color=0 if rank < learners else MPI.UNDEFINED, key=rank)
            self.learner_comm = learner_comm if learner_comm != MPI.COMM_NULL else None

    @property
    def is_sampler_rank(self) -> bool:
        """True on MPI ranks that only step environments (all but the learners)."""
        return self.mpi_comm is not None and self.mpi_comm.Get_rank() != 0

    @property
    def writes_run(self) -> bool:
        """Whether this process writes the run folder, logs and checkpoints (world rank 0)."""
        return self.world_comm is None or self.world_comm.Get_rank() == 0

    @contextlib.contextmanager
    def _fatal_on_every_rank(self):
        """Under MPI an error on the learner must end the samplers too (else they wait forever).

        While every sampler lives, they are closed in order (their ``run()`` returns and MPI
        finalises normally) and the error propagates on rank 0; otherwise (a sampler died,
        or the samplers never got their setup) the whole job is aborted.
        """
        if self.world_comm is None:
            yield
            return
        try:
            yield
        except BaseException as error:
            from aquaml.parallel.mpi import abort, rank_message

            pool = getattr(getattr(self, "collector", None), "pool", None)
            if pool is None or getattr(pool, "dead", True) or self.learner_comm is not None:
                abort(self.world_comm, error)  # other learners may wait in a gradient average
            try:
                pool.close()
            except BaseException:
                abort(self.world_comm, error)
            print(rank_message(self.world_comm, error), file=sys.stderr, flush=True)
            raise

    def _build(self, env, model_class_dict, algo, algo_hyperparameter, name, run_root, resume, progress,
               n_workers, envs_per_worker, mpi_transport) -> None:
        params = algo_hyperparameter if algo_hyperparameter is not None else algo.Parameters()
        if not isinstance(params, algo.Parameters):
            raise TypeError(f"algo_hyperparameter is a {type(params).__name__}; {algo.__name__} needs "
                            f"{algo.Parameters.__name__} (e.g. SAC2_parameter(...))")
        if self.learner_comm is not None:
            if resume is not None:
                raise ValueError("resume is not available with learners > 1: only learner 0's state is "
                                 "checkpointed; resume with one learner, or start a new run")
            if params.overlap:
                from mpi4py import MPI

                if MPI.Query_thread() != MPI.THREAD_MULTIPLE:
                    raise ValueError("overlap with learners > 1 runs MPI from two threads, which this MPI "
                                     "library does not allow (no MPI_THREAD_MULTIPLE); set overlap=False")
        if self.mpi_comm is not None:
            samplers = self.mpi_comm.Get_size() - 1
            if n_workers or envs_per_worker:
                raise ValueError("under MPI the sampler ranks step the environments; drop n_workers/envs_per_worker")
            if params.n_envs < samplers:
                print(f"aquaml: {samplers} sampler ranks: n_envs {params.n_envs} -> {samplers} (one env per "
                      "sampler; set n_envs to choose)", file=sys.stderr, flush=True)
                params = params.replace(n_envs=samplers)
        self.params = params
        # Each learner's group collects its own data (learner 0 as a single learner would);
        # the models start from params.seed on every learner.
        self._data_seed = params.seed if self.group == 0 else episode_seed(params.seed, 2, self.group)
        self.algo_cls = algo
        self.progress = progress
        keras.utils.set_random_seed(params.seed)  # reproducible Keras weight initialisation

        self._eval_env_factory = env_factory(env)  # copies taken before the training env is stepped
        self.env = make_env(env)
        obs_info = self.env.obs_info
        self.env_name = getattr(self.env, "env_name", None) or type(self.env).__name__
        self.name = name or f"{algo.name}_{self.env_name}"

        self.action_space = self.env.action_space_info
        if self.action_space is not None and self.action_space.n is not None and not algo.discrete_actions:
            raise ValueError(f"{self.env_name} has discrete actions; {algo.__name__} needs continuous ones "
                             "(use PPO for discrete actions)")
        self.model_classes = self._model_classes(model_class_dict)
        averaging = None
        if self.learner_comm is not None:
            from aquaml.parallel.data_parallel import mean_across

            averaging = mean_across(self.learner_comm)
        with gradients_transformed_by(averaging):  # data-parallel learners average every gradient
            self.models = self._build_models(obs_info)
            self.state_outputs = self.models["actor"].state_outputs
            self.env.set_state_outputs(self.state_outputs)
            self.algo = algo(params, self.models,
                             self.action_space or ActionSpace(self.models["actor"].output_info["action"]))

        self.episode_length = params.episode_length or self._env_time_limit()
        if self.episode_length is None:
            raise ValueError(f"{self.env_name} declares no episode limit; set episode_length (or epoch_length) "
                             "in the algorithm parameters")
        self.driver = EnvDriver(self.env, self.episode_length)
        self.actor_inputs = self.models["actor"].input_names
        self.n_workers = self._n_workers(n_workers, envs_per_worker)
        # In-process, env 0 is the given instance (the seed's scripts keep a handle on it);
        # workers build every env from copies.
        env_fns = [self._eval_env_factory for _ in range(params.n_envs)]
        if self.n_workers == 0:
            env_fns[0] = lambda: self.env
        obs_fields = {k: (s, self.driver.dtypes[k]) for k, s in self.driver.shapes.items()}
        self.collector = Collector(env_fns, self.episode_length, obs_fields, self.state_outputs, self.algo.act,
                                   self.actor_inputs, self.algo.action_field, self.algo.random_action,
                                   self._data_seed, self.algo.extra_fields, n_workers=self.n_workers,
                                   overlap=params.overlap, mpi_comm=self.mpi_comm, mpi_transport=mpi_transport)
        self.learner = LEARNERS[algo.kind](self.algo, self.collector.fields(), params)
        self._eval_driver: EnvDriver | None = None

        self.rng = np.random.Generator(np.random.PCG64(self._data_seed))
        init_key, act_key = jax.random.split(jax.random.PRNGKey(params.seed))  # the same on every learner
        self.act_key = act_key if self.group == 0 else jax.random.fold_in(act_key, self.group)
        self.state = self.algo.init_state(init_key)
        self.epoch = self.env_steps = self.grad_steps = self.displays = 0
        self.eval_history: list[tuple[int, float]] = []
        self.train_returns: list[float] = []
        self.wall_time = self.train_time = 0.0
        self.run_dir: Path | None = None
        if resume is not None:
            self._restore(Path(resume))
        else:
            # Validate the environment's first observation before any training work.
            self.driver.reset(0)
        self._new_run_root = Path(run_root)

    # -- construction -----------------------------------------------------------------
    def _model_classes(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        roles = ("actor", *self.algo_cls.critic_roles)
        given = dict(given or {})
        unknown = set(given) - set(roles)
        if unknown:
            raise ValueError(f"model_class_dict has unknown roles {sorted(unknown)}; {self.algo_cls.__name__} "
                             f"uses {roles}")
        return {role: given.get(role) for role in roles}

    def _build_models(self, obs_info) -> dict:
        p = self.params
        obs = obs_info.shape_dict
        action_shape = self.action_space.shape if self.action_space is not None else None
        specs = {}
        actor_cls = self.model_classes["actor"]
        if actor_cls is None:
            if action_shape is None:
                raise ValueError(f"{type(self.env).__name__} does not declare its action shape; give an actor "
                                 "model or set self._action_info = DataInfo(('action',), ((n,),))")
            actor_cls = MLPActor(tuple(obs), action_shape, p.hidden_sizes, p.learning_rate,
                                 log_std=self.algo_cls.default_log_std_head and not self._discrete,
                                 lstm_size=p.lstm_size)
        specs["actor"] = build_model(actor_cls, "actor", obs, actor=True, action_shape=action_shape)
        actor = specs["actor"]
        critic_inputs = {**obs, **actor.state_outputs}
        if self.algo_cls.critic_uses_action:
            critic_inputs["action"] = actor.output_info["action"]
        for role in self.algo_cls.critic_roles:
            cls = self.model_classes[role]
            if cls is None:
                # default critics read the observations, the actor's memory (if any) and the action
                cls = MLPCritic(tuple(critic_inputs), p.hidden_sizes, p.learning_rate)
            specs[role] = build_model(cls, role, critic_inputs, actor=False)
        return specs

    def _n_workers(self, n_workers: int, envs_per_worker: int | None) -> int:
        n_envs = self.params.n_envs
        if envs_per_worker is not None:
            if n_workers:
                raise ValueError("give n_workers or envs_per_worker, not both")
            if not isinstance(envs_per_worker, int) or envs_per_worker < 1:
                raise ValueError(f"envs_per_worker must be a positive integer, got {envs_per_worker!r}")
            return -(-n_envs // envs_per_worker)
        if not isinstance(n_workers, int) or not 0 <= n_workers <= n_envs:
            raise ValueError(f"n_workers must be an integer from 0 to n_envs ({n_envs}), got {n_workers!r}; "
                             "raise n_envs to run more workers")
        return n_workers

    def _env_time_limit(self) -> int | None:
        limit = getattr(self.env, "max_episode_steps", None)
        if limit is None:
            spec = getattr(getattr(self.env, "env", None), "spec", None)
            limit = getattr(spec, "max_episode_steps", None)
        return limit

    @property
    def _discrete(self) -> bool:
        return self.action_space is not None and self.action_space.n is not None

    @property
    def buffer(self):
        """The replay buffer of off-policy runs."""
        return self.learner.buffer

    @property
    def config_env(self) -> str | None:
        """The environment as ``config.json`` records it: a Gymnasium id or an importable class."""
        env = self._env_spec
        return env if isinstance(env, str) else _qualname(env)

    def _describe(self) -> dict:
        return {
            "algo": self.algo_cls.name,
            "env": self.config_env,
            "env_name": self.env_name,
            "name": self.name,
            "parameters": self.params.to_dict(),
            "seed": self.params.seed,
            "episode_length": self.episode_length,
            "models": {role: (_qualname(cls) if cls is not None else "default")
                       for role, cls in self.model_classes.items()},
            "obs_info": self.env.obs_info.to_json(),
            "state_outputs": {k: list(v) for k, v in self.state_outputs.items()},
            "versions": package_versions(),
            "created": datetime.now().isoformat(timespec="seconds"),
        }

    def _make_run_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = self._new_run_root / self.name / stamp
        path, k = base, 1
        while path.exists():
            path, k = base.with_name(f"{stamp}-{k}"), k + 1
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps(self._describe(), indent=2))
        return path

    # -- training ---------------------------------------------------------------------
    @property
    def total_epochs(self) -> int:
        return self.params.n_epochs

    def run(self) -> RunSummary | None:
        """Train for the remaining epochs; returns the summary of the whole run.

        Under MPI, sampler ranks step environments until the learner finishes and return None;
        the learner closes the samplers at the end, so ``run()`` is called once per job.
        """
        if self.is_sampler_rank:
            from aquaml.parallel.mpi import serve

            factory = env_factory(self._env_spec)
            serve(self.mpi_comm, lambda lo, hi: [factory] * (hi - lo))
            return None
        with self._fatal_on_every_rank():
            summary = self._train()
            if self.mpi_comm is not None:
                self.close()
        return summary

    def _train(self) -> RunSummary:
        p = self.params
        if self.run_dir is None and self.writes_run:
            self.run_dir = self._make_run_dir()
        logger = RunLogger(self.run_dir) if self.writes_run else None
        bar = tqdm(total=p.total_steps, initial=self.env_steps, unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.writes_run), desc=self.name)
        metrics: dict = {}
        started, steps_at_start = time.perf_counter(), self.env_steps
        wall_at_start = self.wall_time
        # overlap: epoch k is collected while epoch k-1's gradient steps run in this thread
        updater = ThreadPoolExecutor(1, "aquaml-update") if p.overlap and self.learner.can_overlap else None
        pending: Future | None = None
        lags: list[int] = []
        try:
            while self.epoch < self.total_epochs:
                epoch_start = time.perf_counter()
                n_envs = self.collector.n_envs
                random_steps = self.learner.random_steps(self.env_steps, n_envs)
                lags.append(p.update_times if pending is not None else 0)
                batch, self.act_key = self.collector.collect(
                    p.steps_per_env, self.algo.actor_params(self.state), self.act_key, self.rng, random_steps)
                if pending is not None:
                    self.state, metrics, grad_steps = pending.result()
                    self.grad_steps += grad_steps
                    pending = None
                self.env_steps += p.steps_per_env * n_envs
                self.epoch += 1
                batches = self.learner.prepare(batch, self.rng)
                self.train_returns += [r for r, _ in self.collector.drain_finished()]
                bar.update(p.steps_per_env * n_envs)
                last = self.epoch == self.total_epochs
                display = self.epoch % p.display_interval == 0 or last
                if batches is not None and updater is not None and not display:
                    pending = updater.submit(self._update, self.state, batches)
                elif batches is not None:  # evaluations and checkpoints see every update applied
                    self.state, metrics, grad_steps = self._update(self.state, batches)
                    self.grad_steps += grad_steps
                self.train_time += time.perf_counter() - epoch_start
                if display and self.writes_run:  # other data-parallel learners only train
                    self.wall_time = wall_at_start + time.perf_counter() - started
                    rate = (self.env_steps - steps_at_start) / max(time.perf_counter() - started, 1e-9)
                    row = self._display(metrics, rate)
                    row["policy_lag"] = float(np.mean(lags))
                    lags = []
                    logger.log(row)
                    bar.set_postfix(eval=f"{row['eval_return_mean']:.1f}")
                    if self.progress:
                        bar.write(format_table(row, f"{self.name}  epoch {self.epoch}/{self.total_epochs}"))
                    if self.displays % p.store_model_times == 0 or last:
                        self.save_checkpoint()
        finally:
            if updater is not None:
                updater.shutdown(wait=True)
            bar.close()
            if logger is not None:
                logger.close()
        return self.summary()

    def _update(self, state, batches):
        """The gradient steps of one epoch, finished (so their time is counted where they ran)."""
        state, metrics, grad_steps = self.learner.update(state, batches)
        jax.block_until_ready(state)
        return state, metrics, grad_steps

    def close(self) -> None:
        """Stop the sampler workers and free their shared memory (also done at exit)."""
        self.collector.close()

    def _display(self, metrics: Mapping, rate: float) -> dict:
        p = self.params
        returns, lengths = self.evaluate(p.calculate_episodes)  # the same seeded episodes every time
        self.displays += 1
        self.eval_history.append((self.env_steps, float(np.mean(returns))))
        recent = self.train_returns[-10:]
        row = {
            "env_steps": self.env_steps, "grad_steps": self.grad_steps, "epoch": self.epoch,
            "wall_time_s": round(self.wall_time, 3), "train_time_s": round(self.train_time, 3),
            "steps_per_s": round(rate, 2),
            "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
            "eval_episode_length": float(np.mean(lengths)),
            "train_return_mean": float(np.mean(recent)) if recent else float("nan"),
            "train_episodes": len(self.train_returns),
        }
        row.update({k: float(v) for k, v in metrics.items()})
        return row

    def evaluate(self, episodes: int | None = None, first_episode: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic returns and lengths over ``episodes`` seeded episodes of a separate env."""
        if episodes is not None and episodes <= 0:
            raise ValueError(f"episodes must be positive, got {episodes}")
        if self._eval_driver is None:
            env = self._eval_env_factory()
            env.set_state_outputs(self.state_outputs)
            self._eval_driver = EnvDriver(env, self.episode_length)
        return evaluate(self._eval_driver, self.algo.act, self.algo.actor_params(self.state),
                        jax.random.PRNGKey(0), self.actor_inputs,
                        episodes if episodes is not None else self.params.calculate_episodes,
                        self.params.seed, first_episode)

    def summary(self) -> RunSummary:
        final = self.eval_history[-1][1] if self.eval_history else float("nan")
        return RunSummary(final, list(self.eval_history), self.run_dir, self.env_steps, self.grad_steps,
                          self.wall_time, list(self.train_returns), self.train_time)

    # -- checkpoints ------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        collector_meta, collector_arrays = self.collector.state_dict()
        state = {f"algo{k}": v for k, v in tree_to_arrays(self.state).items()}
        state["act_key"] = np.asarray(self.act_key)
        state.update({f"collector/{k}": v for k, v in collector_arrays.items()})
        meta = {
            "epoch": self.epoch, "env_steps": self.env_steps, "grad_steps": self.grad_steps,
            "displays": self.displays, "wall_time_s": self.wall_time, "train_time_s": self.train_time,
            "eval_history": self.eval_history, "train_returns": self.train_returns,
            "rng": self.rng.bit_generator.state, "collector": collector_meta,
        }
        models = {role: (self.models[role].fn, p) for role, p in self.algo.model_params(self.state).items()}
        extra = self.learner.checkpoint_files()
        directory = self.run_dir / "checkpoints"
        path = save_checkpoint(directory, f"epoch_{self.epoch:08d}", state=state, meta=meta,
                               models=models, extra=extra)
        for old in sorted(directory.glob("epoch_*"))[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def _restore(self, run_dir: Path) -> None:
        path = latest_checkpoint(run_dir / "checkpoints")
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'} to resume from")
        saved = json.loads((run_dir / "config.json").read_text())
        if saved["algo"] != self.algo_cls.name:
            raise ValueError(f"{run_dir} is a {saved['algo']} run; it cannot be resumed with {self.algo_cls.name}")
        current = self.params.to_dict()
        changed = sorted(k for k, v in saved["parameters"].items()
                         if k not in RESUMABLE_CHANGES and current.get(k) != v)
        if changed:
            raise ValueError(
                f"resuming {run_dir} with different parameters {changed} would not continue the same run; "
                f"only {', '.join(sorted(RESUMABLE_CHANGES))} may change")
        arrays, meta = load_checkpoint(path)
        algo_arrays = {k[len("algo"):]: v for k, v in arrays.items() if k.startswith("algo")}
        self.state = arrays_to_tree(self.state, algo_arrays)
        self.act_key = jax.numpy.asarray(arrays["act_key"])
        self.rng.bit_generator.state = meta["rng"]
        self.epoch, self.env_steps = int(meta["epoch"]), int(meta["env_steps"])
        self.grad_steps, self.displays = int(meta["grad_steps"]), int(meta["displays"])
        self.wall_time, self.train_time = float(meta["wall_time_s"]), float(meta["train_time_s"])
        self.eval_history = [tuple(x) for x in meta["eval_history"]]
        self.train_returns = list(meta["train_returns"])
        self.learner.restore(path)
        _truncate_progress(run_dir / "progress.csv", self.env_steps)
        self.collector.load_state_dict(
            meta["collector"], {k[len("collector/"):]: v for k, v in arrays.items() if k.startswith("collector/")})
        self.run_dir = run_dir

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, resume: bool = True, progress: bool = True,
                     steps: int | None = None, n_workers: int = 0, **overrides) -> "RLTaskStarter":
        """Rebuild a run from its ``config.json`` (Gymnasium ids and importable classes only).

        Args:
            resume: load the latest checkpoint and continue in ``run_dir``.
            steps: new total of environment steps (sets ``n_epochs``).
            n_workers: sampler processes (the run is the same with any number, except with
                ``overlap``, where the two acting halves follow the workers).
            overrides: parameter changes.
        """
        from aquaml.algorithm import ALGORITHMS

        run_dir = Path(run_dir)
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
        config = json.loads(config_path.read_text())
        if config["env"] is None:
            raise ValueError(f"{run_dir} used an environment that cannot be re-imported (defined in a script); "
                             "rebuild the RLTaskStarter in Python with resume=run_dir")
        env = config["env"] if ":" not in config["env"] else _import(config["env"])()
        models = {}
        for role, path in config["models"].items():
            if path is None:
                raise ValueError(f"{run_dir}: the {role} model class was defined in a script and cannot be "
                                 "re-imported; rebuild the RLTaskStarter in Python with resume=run_dir")
            if path != "default":
                models[role] = _import(path)
        algo = ALGORITHMS[config["algo"]]
        params = algo.Parameters.from_kwargs(**{**config["parameters"], **overrides})
        if steps is not None:
            if steps <= 0:
                raise ValueError(f"steps must be positive, got {steps}")
            params = params.replace(n_epochs=epochs_for(params, steps))
        return cls(env, models, algo, params, name=config["name"], run_root=run_dir.parent.parent,
                   resume=run_dir if resume else None, progress=progress, n_workers=n_workers)
