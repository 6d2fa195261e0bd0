"""``aquaml tune ALGO ENV ...``, ``aquaml tune resume|best|confirm STUDY_DIR``."""
from __future__ import annotations

import argparse
from pathlib import Path

from aquaml.plot.cli import PlotCommand
from aquaml.tools.console import assignments, fail, first_line
from aquaml.tune.study import PRUNERS, SAMPLERS, TuneConfig


def _fail(message: str) -> int:
    return fail(message, "aquaml tune")


def study_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aquaml tune", description="Tune an algorithm's parameters with Optuna.")
    p.add_argument("algo")
    p.add_argument("env")
    p.add_argument("--trials", type=int, required=True, help="trials in the study, however many tuners share it")
    p.add_argument("--budget", type=int, required=True, metavar="STEPS", help="env steps per training run")
    p.add_argument("--space", metavar="FILE.yaml", help="search space (default: the algorithm's, docs/tuning.md)")
    p.add_argument("--seeds", type=int, default=1, help="runs per trial (seeds 0..K-1)")
    p.add_argument("--workers", type=int, default=1, help="trials at once (one process each)")
    p.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--pruner", default="median", help=f"one of {', '.join(PRUNERS)}")
    p.add_argument("--storage", default="", help="journal file or database URL shared by several tuners")
    p.add_argument("--study", default=None, help="study name (default ALGO_ENV)")
    p.add_argument("--out", default=None, help="study folder (default tune/STUDY)")
    p.add_argument("--objective", default="eval_return_mean", help="progress.csv column to maximise")
    p.add_argument("--aggregate", default="mean", help="over seeds: mean or iqm")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed parameter")
    return p


def _storage(storage: str) -> str:
    """A journal path made absolute (resume and confirm may run from elsewhere); URLs as given."""
    return storage if not storage or "://" in storage else str(Path(storage).resolve())


def open_folder(folder: Path):
    """A study folder's settings and its study (read from the storage it names)."""
    from aquaml.tune.study import load_config, open_study

    cfg = load_config(folder)
    return cfg, open_study(cfg)


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study_dir")
    p.add_argument("--out", metavar="DIR", help="folder for the figures (default STUDY_DIR/plots)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png")


def _plot(args) -> int:
    from aquaml.tune.report import write_plots

    _, study = open_folder(Path(args.study_dir))
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


def _best(folder: Path) -> int:
    best = folder / "best.yaml"
    if not best.exists():
        return _fail(f"{folder} holds no best.yaml (not a study folder, or no trial completed)")
    print(best.read_text(), end="")
    print((folder / "best_command.sh").read_text().splitlines()[-1])
    return 0


def main(argv: list[str]) -> int:
    from aquaml.tune.study import load_config, tune
    from aquaml.tune.space import SpaceError

    if argv[:1] == ["best"]:
        if len(argv) != 2:
            return _fail("usage: aquaml tune best STUDY_DIR")
        return _best(Path(argv[1]))
    if argv[:1] == ["confirm"]:
        p = argparse.ArgumentParser(prog="aquaml tune confirm",
                                    description="Rerun the best configurations and the default on fresh seeds.")
        p.add_argument("study_dir")
        p.add_argument("--top", type=int, default=3)
        p.add_argument("--seeds", type=int, default=5)
        args = p.parse_args(argv[1:])
        if args.top <= 0 or args.seeds <= 0:
            return _fail("--top and --seeds must be positive")
        try:
            cfg, study = open_folder(Path(args.study_dir))
            from aquaml.tune.confirm import confirm

            confirm(study, cfg, args.top, args.seeds)
        except (ValueError, RuntimeError, FileNotFoundError) as e:
            return _fail(first_line(e))
        print((cfg.path / "confirm.md").read_text(), end="")
        return 0
    if argv[:1] == ["resume"]:
        p = argparse.ArgumentParser(prog="aquaml tune resume",
                                    description="Finish a study: requeue its dead tuners' trials, run the rest.")
        p.add_argument("study_dir")
        p.add_argument("--workers", type=int, default=None, help="trials at once (default: as the study was started)")
        args = p.parse_args(argv[1:])
        try:
            cfg = load_config(args.study_dir)  # tune() opens the study and requeues
            if args.workers is not None:
                cfg.workers = args.workers
            return _summary(tune(cfg), cfg)
        except (SpaceError, ValueError, TypeError, FileNotFoundError) as e:
            return _fail(first_line(e))
        except KeyboardInterrupt:
            return _interrupted(cfg)
    args = study_parser().parse_args(argv)
    try:
        study = args.study or f"{args.algo}_{args.env}".replace("/", "_")
        cfg = TuneConfig(args.algo, args.env, args.trials, args.budget, args.seeds, args.workers, args.sampler,
                         args.pruner, study, str(Path(args.out or Path("tune") / study).resolve()), _storage(args.storage),
                         args.objective,
                         aggregate=args.aggregate, sampler_seed=args.sampler_seed, sets=assignments(args.set))
        result = tune(cfg, args.space)
    except (SpaceError, ValueError, TypeError, FileNotFoundError) as e:
        return _fail(first_line(e))
    except KeyboardInterrupt:
        return _interrupted(cfg)
    return _summary(result, cfg)


def _interrupted(cfg: TuneConfig) -> int:
    import sys

    print(f"aquaml tune: interrupted; the trials that were running stay RUNNING until `aquaml tune resume "
          f"{cfg.path}` runs them again", file=sys.stderr)
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
