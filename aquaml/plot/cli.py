"""``aquaml plot curves|aggregate|table|tune|rosbag``: figures from run folders, other
frameworks' logs, tuning studies and ROS bags. Bad input ends with one line naming the culprit."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Mapping

from aquaml.tools.console import fail, first_line

PROG = "aquaml plot"


@dataclass(frozen=True)
class PlotCommand:
    """A subcommand of ``aquaml plot`` that another part of the package provides."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _runs_arguments(p: argparse.ArgumentParser, group_default: str = "algo") -> None:
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders, folders holding runs (searched recursively), globs; AquaML, SB3 / RL Zoo "
                        "(evaluations.npz, monitor.csv, progress.csv) or TensorBoard event files")
    p.add_argument("--metric", default="eval_return_mean",
                   help="column to plot (default eval_return_mean; a TensorBoard tag for event files)")
    p.add_argument("--group-by", default=group_default, metavar="KEY",
                   help=f"config key that names a curve's group: algo, env, name, or any parameter "
                        f"(default {group_default})")


def _curves(args) -> int:
    from aquaml.plot.curves import curves_figure, learning_curves
    from aquaml.plot.logs import load_runs
    from aquaml.plot.style import check_output

    if args.smooth < 1:
        return fail(f"--smooth must be a positive number of points, got {args.smooth}", PROG)
    check_output(args.out)
    runs = load_runs(args.runs)
    curves = learning_curves(runs, args.metric, args.x, args.group_by, args.ci, args.smooth)
    for path, why in curves.left_out:
        print(f"{PROG}: warning: left out {path}: {why}", file=sys.stderr)
    out = curves_figure(curves, args.out, args.metric, args.x, args.group_by, args.ci)
    for panel, groups in curves.items():
        for group, c in groups.items():
            print(f"{panel + ' ' if panel else ''}{group}: {c.n_runs} run(s), final {args.metric} {c.mean[-1]:.2f} "
                  f"[{c.low[-1]:.2f}, {c.high[-1]:.2f}] at {c.x_name} {c.x[-1]:g}")
    print(f"wrote {out}")
    return 0


def _scores(args):
    """``(raw, matrices)``: final scores per group and task, and the (normalised) score matrices."""
    from aquaml.plot.logs import load_runs
    from aquaml.plot.scores import final_scores, score_matrices
    from aquaml.plot.stats import load_reference

    if args.reps < 1 or args.last < 1:
        raise ValueError(f"--reps and --last must be positive, got {args.reps} and {args.last}")
    reference = load_reference(args.normalize) if args.normalize else None  # a bad file fails before reading runs
    raw = final_scores(load_runs(args.runs), args.metric, args.group_by, args.last)
    return raw, score_matrices(raw, reference)


def _aggregate(args) -> int:
    from aquaml.plot.aggregate import aggregate_figure, improvement_figure, profile_figure
    from aquaml.plot.style import check_output

    out = check_output(args.out)
    _, scores = _scores(args)
    numbers = aggregate_figure(scores, out, args.reps, seed=args.seed)
    written = [out, out.with_name(f"{out.stem}_profile{out.suffix}")]
    profile_figure(scores, written[1], reps=args.reps, seed=args.seed)
    if len(scores) > 1:
        path = out.with_name(f"{out.stem}_improvement{out.suffix}")
        improvement_figure(scores, path, reps=args.reps, seed=args.seed)
        written.append(path)
    what = "normalised score" if args.normalize else args.metric
    for group, metrics in numbers.items():
        print(f"{group}: " + ", ".join(f"{m} {iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]" for m, iv in metrics.items())
              + f" ({what}, {len(scores[group])} runs)")
    for path in written:
        print(f"wrote {path}")
    return 0


def _table(args) -> int:
    from aquaml.plot.aggregate import per_task_table, score_table

    raw, scores = _scores(args)
    print(score_table(scores, args.format, args.reps, seed=args.seed))
    if args.per_task:
        print()
        print(per_task_table(raw, args.format, args.reps, seed=args.seed))
    return 0


def build_parser(extra: Mapping[str, "PlotCommand"] | None = None) -> argparse.ArgumentParser:
    """The ``aquaml plot`` parser; ``extra`` adds figures drawn by other parts of the package
    (``aquaml plot tune``: a tuning study's figures, from :mod:`aquaml.tune.cli`)."""
    from aquaml.plot import rosbag
    from aquaml.plot.curves import CI_METHODS

    parser = argparse.ArgumentParser(prog=PROG, description="Figures of runs, tuning studies and ROS bags.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("curves", help="learning curves: mean over seeds with a 95%% band, one panel per env")
    _runs_arguments(p)
    p.add_argument("--x", default="env_steps", help="x column: env_steps (default), wall_time_s, grad_steps, cpu_time_s")
    p.add_argument("--ci", choices=CI_METHODS, default="bootstrap",
                   help="band: percentile bootstrap of the mean (default), 1.96 standard errors, one sd, none")
    p.add_argument("--smooth", type=int, default=1, metavar="N", help="trailing moving average over N points")
    p.add_argument("--out", default="curves.png", help="figure: .png, .pdf or .svg (default curves.png)")
    p.set_defaults(func=_curves)
    for name, helptext in (("aggregate", "IQM, mean, median, optimality gap with stratified bootstrap intervals, "
                                         "performance profiles, probability of improvement"),
                           ("table", "final scores with 95%% intervals as a Markdown or LaTeX table")):
        p = sub.add_parser(name, help=helptext)
        _runs_arguments(p)
        p.add_argument("--normalize", metavar="REF.yaml",
                       help="reference scores {env: {random: R, expert: E}}: scores become (R_run - R) / (E - R)")
        p.add_argument("--last", type=int, default=1, metavar="K",
                       help="a run's final score: the mean of its last K evaluations (default 1)")
        p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
        p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        if name == "aggregate":
            p.add_argument("--out", default="aggregate.png",
                           help="figure (.png, .pdf, .svg); profiles and improvement go beside it as "
                                "<stem>_profile and <stem>_improvement")
            p.set_defaults(func=_aggregate)
        else:
            p.add_argument("--format", choices=("md", "latex"), default="md")
            p.add_argument("--per-task", action="store_true", help="also a table of each env's final scores")
            p.set_defaults(func=_table)
    for name, command in (extra or {}).items():
        p = sub.add_parser(name, help=command.help)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    rosbag.add_parser(sub)
    return parser


def main(argv: list[str], extra: Mapping[str, "PlotCommand"] | None = None) -> int:
    args = build_parser(extra).parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, TypeError, KeyError, ImportError) as e:  # ImportError: an optional package
        return fail(first_line(e), PROG)
