"""``aquaml tune ALGO ENV ...`` (a study), ``aquaml tune resume|best|confirm STUDY_DIR`` (subcommands
with their own ``--help``) and ``aquaml plot tune STUDY_DIR`` (:data:`PLOT_STUDY`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aquaml.plot.cli import PlotCommand
from aquaml.tools.console import assignments, fail, first_line
from aquaml.tools.imports import MissingExtra, require
from aquaml.tune.confirm import confirm
from aquaml.tune.report import write_plots
from aquaml.tune.space import SpaceError
from aquaml.tune.storage import StorageError, mask, shown, without_password
from aquaml.tune.study import PRUNERS, SAMPLERS, TuneConfig, load_config, open_study, tune

PROG = "aquaml tune"
#: the subcommands on a study folder, with their one-line help
SUBCOMMANDS = {"resume": "finish a study: requeue its dead tuners' trials, run the rest",
               "best": "print the best configuration (best.yaml) and the command that trains it",
               "confirm": "rerun the best configurations and the default on fresh seeds"}
USAGE = (f"{PROG} ALGO ENV --trials N --budget STEPS [options]\n"
         f"       {PROG} {{{','.join(SUBCOMMANDS)}}} STUDY_DIR [options]")
_ERRORS = (SpaceError, ValueError, TypeError, FileNotFoundError, StorageError)  #: bad input: one line, status 2


def _fail(error: BaseException | str) -> int:
    """A one-line error, any password in it masked."""
    return fail(mask(first_line(error) if isinstance(error, BaseException) else error), PROG)


def _epilog() -> str:
    lines = ["subcommands on a study folder (each has its own --help):"]
    lines += [f"  {PROG} {name} STUDY_DIR".ljust(34) + text for name, text in SUBCOMMANDS.items()]
    return "\n".join(lines)


def study_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, usage=USAGE, description="Tune an algorithm's parameters with Optuna.",
                                epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("algo")
    p.add_argument("env")
    p.add_argument("--trials", type=int, required=True, help="trials in the study, however many tuners share it")
    p.add_argument("--budget", type=int, required=True, metavar="STEPS", help="env steps per training run")
    p.add_argument("--space", metavar="FILE.yaml", help="search space (default: the algorithm's, docs/tuning.md)")
    p.add_argument("--seeds", type=int, default=1, help="runs per trial (seeds 0..K-1)")
    p.add_argument("--workers", type=int, default=1, help="trials at once (one process each)")
    p.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--pruner", default="median", help=f"one of {', '.join(PRUNERS)}")
    p.add_argument("--storage", default="", help="journal file or database URL shared by several tuners (a password "
                                                 "in it is never written to disk)")
    p.add_argument("--study", default=None, help="study name (default ALGO_ENV)")
    p.add_argument("--out", default=None, help="study folder (default tune/STUDY)")
    p.add_argument("--objective", default="eval_return_mean", help="progress.csv column to maximise")
    p.add_argument("--aggregate", default="mean", help="over seeds: mean or iqm")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed parameter")
    return p


def _storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", help="the study's database URL with its password (the study folder "
                                                    "keeps it without; else PGPASSWORD or ~/.pgpass supply it)")


def command_parser() -> argparse.ArgumentParser:
    """The subcommands on a study folder, each with its own parser (and ``--help``)."""
    p = argparse.ArgumentParser(prog=PROG, usage=USAGE, description="Tune an algorithm's parameters with Optuna.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run) -> argparse.ArgumentParser:
        q = sub.add_parser(name, prog=f"{PROG} {name}", help=SUBCOMMANDS[name],
                           description=SUBCOMMANDS[name][0].upper() + SUBCOMMANDS[name][1:] + ".")
        q.add_argument("study_dir")
        q.set_defaults(run=run)
        return q

    resume = command("resume", _resume)
    resume.add_argument("--workers", type=int, default=None, help="trials at once (default: as the study was started)")
    _storage_option(resume)
    command("best", _best)
    confirm = command("confirm", _confirm)
    confirm.add_argument("--top", type=int, default=3, help="configurations to rerun besides the default")
    confirm.add_argument("--seeds", type=int, default=5, help="fresh seeds per configuration (1000, 1001, ...)")
    _storage_option(confirm)
    return p


def _storage(storage: str) -> str:
    """A journal path made absolute (resume and confirm may run from elsewhere); URLs as given."""
    return storage if not storage or "://" in storage else str(Path(storage).resolve())


def load_folder(folder: Path, storage: str | None = None) -> TuneConfig:
    """A study folder's settings; ``storage``: its database URL given again with the password."""
    cfg = load_config(folder)
    if storage:
        given = without_password(_storage(storage))
        if given != cfg.storage:
            raise ValueError(f"--storage {shown(given)} is not the study's storage "
                             f"({shown(cfg.storage or 'its journal')})")
    return cfg


def open_folder(folder: Path, storage: str | None = None):
    """A study folder's settings and its study (read from the storage it names)."""
    cfg = load_folder(folder, storage)
    return cfg, open_study(cfg)


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study_dir")
    p.add_argument("--out", metavar="DIR", help="folder for the figures (default STUDY_DIR/plots)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png")
    _storage_option(p)


def _plot(args) -> int:
    require(("optuna", "matplotlib"), "aquaml plot tune", "tune")
    _, study = open_folder(Path(args.study_dir), args.storage)
    out = Path(args.out) if args.out else Path(args.study_dir) / "plots"
    written = write_plots(study, out, f".{args.format}")
    if not written:
        raise ValueError(f"{args.study_dir}: no figure can be drawn yet (no complete trial)")
    for name in written:
        print(f"wrote {out / name}.{args.format}")
    return 0


#: ``aquaml plot tune STUDY_DIR``: the study's figures (history, importances, intermediate values, ...)
PLOT_STUDY = PlotCommand("a tuning study's figures (history, importances, intermediate values, ...)",
                         _plot_arguments, _plot)


def main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in SUBCOMMANDS:
        args = command_parser().parse_args(argv)
        run, what = args.run, f"{PROG} {args.command}"
    else:
        args = study_parser().parse_args(argv)
        run, what = _study, PROG
    if run is not _best:  # best only reads the folder's files
        try:
            require(("optuna", "yaml", "matplotlib"), what, "tune")  # before any work: one line naming the extra
        except MissingExtra as e:
            return _fail(e)
    return run(args)


def _study(args) -> int:
    cfg = None
    try:
        study = args.study or f"{args.algo}_{args.env}".replace("/", "_")
        cfg = TuneConfig(args.algo, args.env, args.trials, args.budget, args.seeds, args.workers, args.sampler,
                         args.pruner, study, str(Path(args.out or Path("tune") / study).resolve()),
                         _storage(args.storage), args.objective, aggregate=args.aggregate,
                         sampler_seed=args.sampler_seed, sets=assignments(args.set))
        return _summary(tune(cfg, args.space), cfg)
    except _ERRORS as e:
        return _fail(e)
    except KeyboardInterrupt:
        return _interrupted(cfg)


def _resume(args) -> int:
    cfg = None
    try:
        cfg = load_folder(Path(args.study_dir), args.storage)  # tune() opens the study and requeues
        if args.workers is not None:
            cfg.workers = args.workers
        return _summary(tune(cfg), cfg)
    except _ERRORS as e:
        return _fail(e)
    except KeyboardInterrupt:
        return _interrupted(cfg)


def _best(args) -> int:
    folder = Path(args.study_dir)
    best = folder / "best.yaml"
    if not best.exists():
        return _fail(f"{folder} holds no best.yaml (not a study folder, or no trial completed)")
    print(best.read_text(), end="")
    print((folder / "best_command.sh").read_text().splitlines()[-1])
    return 0


def _confirm(args) -> int:
    if args.top <= 0 or args.seeds <= 0:
        return _fail("--top and --seeds must be positive")
    try:
        cfg, study = open_folder(Path(args.study_dir), args.storage)
        confirm(study, cfg, args.top, args.seeds)
    except (ValueError, RuntimeError, FileNotFoundError, StorageError) as e:
        return _fail(e)
    print((cfg.path / "confirm.md").read_text(), end="")
    return 0


def _interrupted(cfg: TuneConfig | None) -> int:
    where = cfg.path if cfg is not None else "STUDY_DIR"
    print(f"{PROG}: interrupted; the trials that were running stay RUNNING until `aquaml tune resume "
          f"{where}` runs them again", file=sys.stderr)
    return 130


def _summary(result, cfg: TuneConfig) -> int:
    from optuna.trial import TrialState

    states = [t.state for t in result.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.name.lower()}" for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                        TrialState.FAIL))
    print(f"study {cfg.study}: {len(states)} trials ({counts}); folder {cfg.path}")
    if (cfg.path / "best.yaml").exists():
        print((cfg.path / "best_command.sh").read_text().splitlines()[-1])
    return 0
