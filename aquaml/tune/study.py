"""A tuning study: Optuna's sampler and pruner over ordinary training runs.

:func:`tune` creates (or continues) a study whose storage is, by default, Optuna's journal
file in the study folder (no server); ``storage`` may name a shared journal file or a
PostgreSQL/MySQL URL so that tuners on several machines share one study (its password is never
written: :mod:`aquaml.tune.storage`). :class:`Tuner` runs the trials. The default
configuration is enqueued as the first trial, so the study always reports what tuning gained.
Trials are asked for under a lock (in the database, or on the journal file itself), so however
many tuner threads, processes or machines share the study, it never holds more than ``trials``
trials. That is also how ``mpirun -n N aquaml tune ...`` spreads trials over its ranks: each rank
is one more tuner of the study (the ranks of other nodes need the storage on a shared file
system or a database).
"""
from __future__ import annotations

import copy
import fcntl
import json
import math
import os
import shlex
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aquaml.algorithm.parameters import as_text, max_steps
from aquaml.tools.imports import optional_import
from aquaml.tune.process import TrialProcess
from aquaml.tune.report import write_plots, write_report
from aquaml.tune.space import Dimension, default_space, load_space, parse_space
from aquaml.tune.storage import connect_url, is_database, storage_errors, without_password
from aquaml.tune.trial import (REPORT_POINTS, UNKNOWN_OBJECTIVE, TrialOutcome, first_pruned_point, run_trial,
                               train_command)

SAMPLERS = ("tpe", "random", "cmaes", "qmc")
STALE_AFTER_S = 120.0  #: a RUNNING trial whose heartbeat is older is its dead tuner's (clocks must agree)
PRUNERS = ("median", "halving", "hyperband", "none")
#: the default trial's user attributes (a requeued default trial keeps them all)
DEFAULT_ATTRS = ("default", "default_assignments", "default_inside")
OBJECTIVE_AGGREGATES = ("mean", "iqm")


@dataclass
class TuneConfig:
    """Everything a study needs; stored in the study so ``resume`` and ``best`` need only the folder."""

    algo: str
    env: str
    trials: int
    budget: int  #: env steps per run (gradient steps for offline algorithms)
    seeds: int = 1  #: runs per trial, seeds 0..K-1 (the objective aggregates them)
    workers: int = 1  #: trials run at once by this tuner
    sampler: str = "tpe"
    pruner: str = "median"
    study: str = "study"
    folder: str = ""  #: the study folder (default tune/<study>)
    storage: str = ""  #: "" for the journal file in the folder, a journal path, or a database URL (no password)
    objective: str = "eval_return_mean"  #: a progress.csv column, maximised
    last_evals: int = 3  #: evaluations averaged per run
    aggregate: str = "mean"  #: over seeds: mean or iqm
    sampler_seed: int = 0
    sets: dict = field(default_factory=dict)  #: fixed parameters (``--set key=value``)
    space: dict = field(default_factory=dict)  #: name -> distribution (filled from the default or --space)

    def __post_init__(self) -> None:
        # a database URL's password stays in this process (storage.py), never in the settings
        self.storage = without_password(self.storage)

    @property
    def path(self) -> Path:
        return Path(self.folder or Path("tune") / self.study)


def settings(cfg: TuneConfig) -> dict:
    """The settings as ``study.json`` and the study's ``config`` attribute keep them (no password:
    the storage URL lost it when the config was made)."""
    return asdict(cfg)


def write_settings(cfg: TuneConfig) -> None:
    (cfg.path / "study.json").write_text(json.dumps(settings(cfg), indent=2))


def load_config(folder: str | Path) -> TuneConfig:
    """The settings a study folder was started with (``study.json``), bound to that folder
    wherever the study was started from."""
    settings = Path(folder) / "study.json"
    if not settings.exists():
        raise FileNotFoundError(f"{folder} is not a study folder (no study.json)")
    return TuneConfig(**{**json.loads(settings.read_text()), "folder": str(Path(folder).resolve())})


def check_config(cfg: TuneConfig, space_file: str | None = None) -> dict[str, Dimension]:
    """Validate everything before the first trial; returns the parsed space (and fills ``cfg.space``)."""
    from aquaml.algorithm.registry import resolve_algorithm

    algo = resolve_algorithm(cfg.algo)
    for name, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("aggregate", OBJECTIVE_AGGREGATES)):
        if getattr(cfg, name) not in choices:
            raise ValueError(f"unknown {name} {getattr(cfg, name)!r}; use one of {', '.join(choices)}")
    for name in ("trials", "budget", "seeds", "workers", "last_evals"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if cfg.space:
        space = parse_space(cfg.space, algo.Parameters)
    elif space_file:
        space = load_space(space_file, algo.Parameters)
    else:
        space = default_space(algo)
    clash = sorted(set(space) & set(cfg.sets))
    if clash:
        raise ValueError(f"{', '.join(clash)} both searched and fixed by --set; drop one")
    cfg.space = {name: dim.to_dict() for name, dim in space.items()}
    # the fixed parameters must build, and the budget must hold one epoch (whose end evaluates)
    params = algo.Parameters().with_strings(cfg.sets)
    per_epoch = params.steps_per_env * params.n_envs
    cap = max_steps()
    if cap is not None:  # a testing aid (docs/outputs.md): two trials of one epoch and one seed
        cfg.budget, cfg.trials, cfg.seeds = max(min(cfg.budget, cap), per_epoch), min(cfg.trials, 2), 1
    if cfg.budget < per_epoch:
        raise ValueError(f"--budget {cfg.budget} is below one epoch of {cfg.algo} ({per_epoch} steps): no evaluation "
                         "would run within it; raise the budget or make the epoch smaller")
    return space


def default_assignment(cfg: TuneConfig, space: dict[str, Dimension]) -> tuple[dict[str, Any], dict[str, str]]:
    """The algorithm's defaults for the searched names (the first trial): ``(values that lie in
    the space, as suggest returns them; every default as --set text)``."""
    from aquaml.algorithm.registry import resolve_algorithm

    params = resolve_algorithm(cfg.algo).Parameters().with_strings(cfg.sets)
    inside, texts = {}, {}
    for name, dim in space.items():
        value = getattr(params, name)
        texts[name] = as_text(value)
        if dim.type == "categorical":
            match = [c for c in dim.choices if as_text(c) == texts[name]]
            if match:
                inside[name] = match[0]
        elif value is not None and dim.low <= float(value) <= dim.high:
            inside[name] = value
    return inside, texts


def journal_path(cfg: TuneConfig) -> Path:
    """The study folder's journal file, the storage of a study without ``--storage``."""
    return cfg.path / "journal.log"


def open_study(cfg: TuneConfig):
    optuna = optional_import("optuna", "aquaml tune", "tune")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg.path.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage or str(journal_path(cfg))
    if not is_database(storage):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str(storage)))
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=cfg.sampler_seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=cfg.sampler_seed),
                "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=cfg.sampler_seed),
                "qmc": lambda: optuna.samplers.QMCSampler(seed=cfg.sampler_seed)}
    # steps are the report points (trial.py): no pruning before the first point past the first
    # quarter of a run (early RL evaluations are mostly noise), where the halving rungs begin too
    first = first_pruned_point()
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=first),
               "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=first, max_resource=REPORT_POINTS,
                                                                   reduction_factor=3),
               "none": lambda: optuna.pruners.NopPruner()}
    options = dict(study_name=cfg.study, direction="maximize", sampler=samplers[cfg.sampler](),
                   pruner=pruners[cfg.pruner](), load_if_exists=True)
    if not isinstance(storage, str):
        return optuna.create_study(storage=storage, **options)
    with storage_errors(storage, f"cannot open study {cfg.study}"):
        return optuna.create_study(storage=connect_url(storage), **options)


_ENGINES: dict = {}


@contextmanager
def study_lock(cfg: TuneConfig):
    """Serialises counting and asking over every tuner of the study: a PostgreSQL advisory lock or
    a MySQL named lock in the study's database, else a lock on its journal (or SQLite) file itself."""
    url = cfg.storage
    if url.startswith(("postgresql", "mysql")):
        with database_lock(url, f"aquaml-tune:{cfg.study}"):
            yield
        return
    # the storage file is its own lock: a separate lock file would stay behind, and could not be
    # removed safely while another tuner waits on it (Optuna locks its journal with a symlink,
    # SQLite its database with fcntl locks: neither meets flock)
    path = journal_path(cfg) if not url else Path(url.split("///", 1)[1] if url.startswith("sqlite") else url)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def database_lock(url: str, name: str):
    """A PostgreSQL advisory lock or a MySQL named lock ``name`` in the database ``url`` (stored
    without its password: :func:`~aquaml.tune.storage.connect_url` adds it back)."""
    import sqlalchemy

    take, drop = (("SELECT pg_advisory_lock(hashtext(:n))", "SELECT pg_advisory_unlock(hashtext(:n))")
                  if url.startswith("postgresql") else ("SELECT GET_LOCK(:n, -1)", "SELECT RELEASE_LOCK(:n)"))
    with storage_errors(url, "cannot lock the study"):
        if url not in _ENGINES:
            _ENGINES[url] = sqlalchemy.create_engine(connect_url(url), poolclass=sqlalchemy.pool.NullPool)
        conn = _ENGINES[url].connect()
    try:
        with storage_errors(url, "cannot lock the study"):
            conn.execute(sqlalchemy.text(take), {"n": name})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text(drop), {"n": name})
    finally:
        conn.close()


def tune(cfg: TuneConfig, space_file: str | None = None, log=print) -> Any:
    """Run (or continue) the study until it holds ``cfg.trials`` finished trials; returns it."""
    return Tuner(cfg, space_file, log).run()


class Tuner:
    """One tuner of a study: ``cfg.workers`` threads, each with its warm trial process, ask for
    trials under the study lock and run them until the study holds ``cfg.trials`` trials."""

    STARTED = ("RUNNING", "COMPLETE", "PRUNED", "FAIL")  #: the states that count towards the trial cap

    def __init__(self, cfg: TuneConfig, space_file: str | None = None, log=print) -> None:
        self.cfg, self.log = cfg, log
        self.space = check_config(cfg, space_file)
        self.study = None
        self.wrong_objective: list[str] = []  # the first run that lacks the objective stops the study: every run would
        self.interrupted = threading.Event()  # Ctrl-C: no new trial; running ones stay RUNNING for `tune resume`
        self.processes: list[TrialProcess] = []

    def run(self):
        """Run (or continue) the study until it holds ``cfg.trials`` finished trials; returns it."""
        self.open()
        self.run_workers()
        with study_lock(self.cfg):  # tuners finishing together (mpirun ranks) write one after another
            write_outputs(self.study, self.cfg)
        if self.wrong_objective:
            raise ValueError(f"--objective: {self.wrong_objective[0]}")
        return self.study

    def open(self) -> None:
        """Open (or create) the study, requeue its dead tuners' trials, enqueue the default first."""
        cfg = self.cfg
        cfg.path.mkdir(parents=True, exist_ok=True)
        with study_lock(cfg):  # also around opening: tuners starting together would create the tables twice
            self.study = open_study(cfg)
            check_joining(self.study.user_attrs.get("config"), cfg)
            requeue_stale(self.study, cfg, self.log)
            if "config" not in self.study.user_attrs:
                self.study.set_user_attr("config", settings(cfg))
                enqueue_default(self.study, cfg, self.space)
        write_settings(cfg)

    def ask(self):
        """The next trial (a queued one first), or None once the study holds its trials."""
        from optuna.trial import TrialState

        if self.wrong_objective:
            return None
        with study_lock(self.cfg):
            started = [TrialState[name] for name in self.STARTED]
            counted = [t for t in self.study.get_trials(deepcopy=False, states=started)
                       if not t.user_attrs.get("requeued")]
            if len(counted) >= self.cfg.trials:
                return None
            trial = self.study.ask()
            trial.set_user_attr("tuner", {"machine": machine_id(), "pid": os.getpid()})
            trial.set_user_attr("heartbeat", time.time())
            return trial

    def assign(self, trial) -> dict[str, str]:
        """The trial's values as ``--set`` text. The default trial suggests its in-space values
        (the sampler learns from them); the rest of it runs as it is."""
        fixed, inside = trial.user_attrs.get("default_assignments"), trial.user_attrs.get("default_inside", ())
        assignments = {name: as_text(dim.suggest(trial)) if fixed is None or name in inside else fixed[name]
                       for name, dim in self.space.items()}
        trial.set_user_attr("assignments", assignments)
        return assignments

    def run_one(self, trial, process: TrialProcess) -> TrialOutcome:
        cfg = self.cfg

        def report(value: float, point: int) -> bool:
            return self.report(trial, value, point)

        def record(value: float, point: int) -> None:
            self.study._storage.set_trial_intermediate_value(trial._trial_id, point, value)

        return run_trial(cfg.algo, cfg.env, cfg.budget, list(range(cfg.seeds)), {**cfg.sets, **self.assign(trial)},
                         cfg.path / "runs" / f"trial_{trial.number:04d}", report, cfg.objective, cfg.last_evals,
                         cfg.aggregate, process=process, beat=lambda: trial.set_user_attr("heartbeat", time.time()),
                         record=record)

    def report(self, trial, value: float, point: int) -> bool:
        """The trial's value at a report point (the aggregate over the seeds that passed it,
        replacing what fewer seeds reported there), and whether the pruner stops the trial there:
        judged on its values up to that point, as every trial is at that point."""
        storage = self.study._storage
        storage.set_trial_intermediate_value(trial._trial_id, point, value)
        view = copy.deepcopy(storage.get_trial(trial._trial_id))
        view.intermediate_values = {p: v for p, v in view.intermediate_values.items() if p <= point}
        return self.study.pruner.prune(self.study, view)

    def worker(self, cpus) -> None:
        """One thread's trials, one after another in one warm process."""
        env_vars = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"} if self.cfg.workers > 1 else None
        with TrialProcess(env_vars, cpus) as process:
            self.processes.append(process)
            while not self.interrupted.is_set() and (trial := self.ask()) is not None:
                try:
                    outcome = self.run_one(trial, process)
                except Exception:  # the tuner's own failure: the trial must not stay RUNNING
                    outcome = TrialOutcome("fail", error=traceback.format_exc()[-3000:])
                if self.interrupted.is_set():
                    return  # killed by the interrupt, not by its configuration: resume runs it again
                self.settle(trial, outcome)

    def settle(self, trial, outcome: TrialOutcome) -> None:
        """Tell the study the trial's outcome and log it."""
        import optuna

        try:
            finish(self.study, trial, outcome)
        except optuna.exceptions.UpdateFinishedTrialError:  # another tuner judged it stale meanwhile
            self.log(f"trial {trial.number}: already marked failed by another tuner; its result is dropped")
            return
        self.log(f"trial {trial.number}: {outcome.state}" + (f", {self.cfg.objective} {outcome.value:.2f}"
                                                            if outcome.value is not None else ""))
        if outcome.error.startswith(UNKNOWN_OBJECTIVE):
            self.wrong_objective.append(outcome.error)

    def core_shares(self) -> list:
        """Each worker's share of the cores (none pinned when workers outnumber cores)."""
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        n = self.cfg.workers
        return [cores[i::n] if 1 < n <= len(cores) else None for i in range(n)]

    def run_workers(self) -> None:
        """The workers until the study is full; Ctrl-C kills their trial processes and re-raises."""
        threads = [threading.Thread(target=self.worker, args=(cpus,), name=f"aquaml-tune-{i}")
                   for i, cpus in enumerate(self.core_shares())]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short waits: Ctrl-C reaches this thread
        except KeyboardInterrupt:
            self.interrupted.set()
            for process in self.processes:
                process.kill()
            for t in threads:
                t.join()
            raise


def enqueue_default(study, cfg: TuneConfig, space: dict[str, Dimension]) -> None:
    """The algorithm's default configuration as the study's first trial (defaults outside a
    user's space run as they are)."""
    inside, texts = default_assignment(cfg, space)
    study.enqueue_trial(inside, user_attrs={"default": True, "default_assignments": texts,
                                            "default_inside": sorted(inside)})


#: settings in which the tuners of one study may differ (each its own cores, paths and output)
JOIN_FREE = ("workers", "folder", "storage")


def check_joining(stored: dict | None, cfg: TuneConfig) -> None:
    """A tuner joining (or resuming) a study must tune what the study tunes: refused, naming
    each setting that differs, before any trial runs."""
    if stored is None:
        return
    given = json.loads(json.dumps(settings(cfg)))  # the storage's JSON form: tuples as lists
    differ = [f"{k}: {stored.get(k)!r} in the study, {given.get(k)!r} given" for k in sorted(set(stored) | set(given))
              if k not in JOIN_FREE and stored.get(k) != given.get(k)]
    if differ:
        raise ValueError(f"study {cfg.study} was started with other settings ({'; '.join(differ)}); use the same "
                         "command, `aquaml tune resume STUDY_DIR`, or another --study name")


def is_stale(trial, timeout_s: float = STALE_AFTER_S) -> bool:
    """A RUNNING trial whose tuner is gone: its heartbeat (a user attribute its tuner refreshes
    every few seconds, in the storage every tuner shares) is older than ``timeout_s``, or its
    tuner's process no longer exists on this machine (same host name and boot)."""
    tuner = trial.user_attrs.get("tuner", {})
    if tuner.get("machine") == machine_id() and tuner.get("pid") != os.getpid():
        try:
            os.kill(int(tuner["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError):
            pass
    beat = trial.user_attrs.get("heartbeat")
    return beat is not None and time.time() - float(beat) > timeout_s


def machine_id() -> str:
    """This host and boot (a container sharing the host name has its own PIDs, so the boot id and
    the PID namespace are part of it)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        boot = pid_ns = ""
    return f"{socket.gethostname()}/{boot}/{pid_ns}"


def requeue_stale(study, cfg: TuneConfig, log=print) -> None:
    """Mark the RUNNING trials of dead tuners FAIL (kept out of the trial count) and queue their
    configurations again, so the study still ends with ``trials`` counted trials."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(t):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "requeued", True)
        study._storage.set_trial_user_attr(t._trial_id, "error", "its tuner stopped (killed or crashed); requeued")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        # the default configuration stays the default, suggesting its in-space values again
        attrs = {key: t.user_attrs[key] for key in DEFAULT_ATTRS if key in t.user_attrs}
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
        log(f"trial {t.number}: its tuner is gone; marked failed and its configuration queued again")


def finish(study, trial, outcome: TrialOutcome) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("run_dirs", outcome.run_dirs)
    trial.set_user_attr("seed_values", outcome.seed_values)
    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr("error", outcome.error)
        study.tell(trial, state=TrialState.FAIL)


def write_outputs(study, cfg: TuneConfig) -> None:
    """``trials.csv``, ``best.yaml``, ``best_command.sh``, ``report.md`` and ``plots/`` in the study folder."""
    import csv

    from optuna.trial import TrialState

    yaml = optional_import("yaml", "best.yaml", "tune")

    from aquaml.algorithm.registry import parameters_of

    trials = study.get_trials(deepcopy=False)
    names = list(cfg.space)
    with open(cfg.path / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", "default", *names, "duration_s", "run_dirs", "error"])
        for t in trials:
            duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            w.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value,
                        bool(t.user_attrs.get("default")), *(t.user_attrs.get("assignments", {}).get(n, "")
                                                             for n in names),
                        duration, ";".join(t.user_attrs.get("run_dirs", [])),
                        t.user_attrs.get("error", "")[-200:].replace("\n", " ")])
    complete = [t for t in trials if t.state == TrialState.COMPLETE and math.isfinite(t.value)]
    if not complete:
        write_report(study, cfg, cfg.path, lambda t: [])
        return
    best = max(complete, key=lambda t: t.value)
    default = next((t for t in complete if t.user_attrs.get("default")), None)
    assignments = {**cfg.sets, **best.user_attrs["assignments"]}
    typed = parameters_of(cfg.algo).parse_strings(assignments)  # numbers as numbers, tuples as lists
    (cfg.path / "best.yaml").write_text(yaml.safe_dump({
        "algo": cfg.algo, "env": cfg.env, "budget": cfg.budget, "trial": best.number, "value": best.value,
        "default_value": default.value if default else None,
        "parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in typed.items()}}, sort_keys=False))
    cmd = train_command(cfg.algo, cfg.env, cfg.budget, 0, assignments)
    write_plots(study, cfg.path / "plots")
    write_report(study, cfg, cfg.path, lambda t: train_command(cfg.algo, cfg.env, cfg.budget, 0,
                                                               {**cfg.sets, **t.user_attrs["assignments"]}))
    (cfg.path / "best_command.sh").write_text("#!/bin/sh\n# the best trial's configuration (trial "
                                             f"{best.number}, {cfg.objective} {best.value:.2f})\n"
                                             + " ".join(shlex.quote(c) for c in cmd) + " \"$@\"\n")
    (cfg.path / "best_command.sh").chmod(0o755)
