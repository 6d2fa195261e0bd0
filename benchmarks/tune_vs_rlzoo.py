"""AquaML's tuner against RL Baselines3 Zoo's tuner: SAC on Pendulum-v1, same budget and trials.

Both tuners run one study each in this invocation: the same algorithm (SAC), env (Pendulum-v1),
number of trials (``--trials``, default 8), env steps per trial (``--budget``, default 4,000),
evaluations per trial reported to the pruner (``--evaluations``, default 4, one every 1,000 steps,
at the same env steps on both sides), deterministic episodes per evaluation (``--eval-episodes``,
default 5), the TPE sampler seeded with ``--seed``, and Optuna's median pruner that starts after
2 complete trials and lets the same evaluations prune (AquaML: ``n_warmup_steps = budget // 4``
env steps; RL Zoo: ``n_evaluations // 3`` evaluations; with 4 evaluations both may prune from
the first, with 6 from the second). Both objectives are the mean return of a trial's last
evaluation (AquaML's study runs with ``last_evals=1``; RL Zoo's ``TrialEvalCallback`` reports
its last ``last_mean_reward``).

Parallelism: one trial at a time on each side (AquaML ``workers=1``, RL Zoo ``--n-jobs 1``), and
both pinned to the same single core (this process and the trial processes it starts inherit the
pin; RL Zoo runs under ``taskset`` on that core, with one PyTorch thread, XLA with one thread).
Two at a time is not comparable: RL Zoo's ``--n-jobs`` runs trials as threads of one Python
process (they share the GIL, and SB3's training loop is Python), AquaML's workers are processes
each pinned to its own core, so a 2-vs-2 wall time would mostly measure the GIL; on a 2-core
machine shared with other work, one core each also keeps the two studies from disturbing each
other. Each side's study wall time is what its user waits: AquaML ``tune()`` from the call to its
return (trial processes, imports, compilation into an empty JAX cache made for this invocation,
its report and plots), RL Zoo ``python -m rl_zoo3.train -optimize`` from launch to exit (imports
and its CSV/pickle report; ``--no-optim-plots``, since its plots open a browser). The span of the
trials in each study's storage (first start to last end) is printed beside it.

The best configuration of each study is then confirmed the same way: trained again for the same
budget on fresh seeds 1000.. (``--confirm-seeds``, default 5) without pruning, each run scored by
the mean return of ``--confirm-episodes`` (default 10) deterministic episodes at its end; printed
as mean +- std over the seeds. AquaML: ``aquaml.tune.trial.run_trial`` (what ``aquaml tune
confirm`` runs) with one evaluation, at the end. RL Zoo: ``benchmarks/rlzoo_tune_runner.py`` in RL
Zoo's virtual environment converts the best trial's sampled values with RL Zoo's own
``HYPERPARAMS_CONVERTER["sac"]``, merges them over RL Zoo's Pendulum-v1 SAC defaults, trains SB3
SAC and evaluates with SB3's ``evaluate_policy``.

What differs (each tool's defaults, deliberately kept):
- the search spaces. AquaML's default SAC space (docs/tuning.md): learning rate log [1e-4, 3e-3],
  batch {64..512}, discount {0.9..0.995}, tau log [1e-3, 0.05], hidden 64x64/128x128/256x256,
  gradient steps per 50 env steps {25, 50, 100}, initial alpha log [0.01, 1], target entropy. RL
  Zoo's ``sample_sac_params``: learning rate log [1e-5, 2e-3], batch 2^[2, 11] (4..2048), 1-gamma
  log [1e-4, 0.03], tau log [1e-3, 0.08], train_freq 1..10 (as many gradient steps), nets
  64x64/256x256/400x300. The larger nets and batches make RL Zoo's trials costlier on average.
- the first trial: AquaML enqueues its default configuration as trial 0 (so the study shows what
  tuning gained); RL Zoo samples every trial.
- TPE's random start: AquaML's sampler is Optuna's ``TPESampler(seed)`` (10 random trials first,
  so with 8 trials its search is the default plus random draws); RL Zoo's
  ``--n-startup-trials`` sets both its sampler's and its pruner's start, and is set to 2
  (``--rlzoo-startup-trials``) so that the pruners match; its multivariate TPE then models from
  the third trial.
- seeds within a study: AquaML trains each trial on seed 0; RL Zoo passes no seed to its trials'
  models, which draw from the generators ``train.py`` seeds once with ``--seed`` (its trials
  repeated exactly between two smoke runs).
- each tool's other SAC defaults: AquaML 1,000 random warm-up steps, 50 env steps per update
  burst; SB3 100 warm-up steps, updates every ``train_freq`` steps.
- evaluation episodes' initial states (each tool seeds its own evaluation env).

No numeric target is stated, so the script prints the ratios only: RL Zoo's study wall time over
AquaML's, and AquaML's confirmed score minus RL Zoo's.

Run from the repository root:  python benchmarks/tune_vs_rlzoo.py
  (options: --trials 8 --budget 4000 --evaluations 4 --eval-episodes 5 --confirm-seeds 5
   --confirm-episodes 10 --seed 0 --rlzoo-startup-trials 2 --skip-aquaml --skip-rlzoo --no-pin
   --keep DIR)
  smoke:  python benchmarks/tune_vs_rlzoo.py --trials 2 --budget 1000 --evaluations 2
          --eval-episodes 2 --confirm-seeds 2 --confirm-episodes 2

Duration (an estimate, not a measurement: the smoke run shared its 2 cores with other work). On
one otherwise idle core of the 2-core AMD EPYC of docs/benchmarks.md, SB3 SAC trains about 130
steps/s at 256x256 and batch 256. RL Zoo's space averages a batch of about 400 over 64x64,
256x256 and 400x300 nets with one gradient step per env step, roughly 10 ms per step, so about
40 s per 4,000-step trial on average (8 trials: 4-6 min after pruning), and its confirmation 5 x
the best trial's cost (2-5 min); AquaML's study about 3 min (training, about 8 s per trial of
process start and compilation) and its confirmation 1-2 min. About 12-15 minutes in all. The
cost is long-tailed on RL Zoo's side: one trial that draws batch 2048 with 400x300 nets runs
near 90 ms per step (6 min for 4,000 steps), and if it is the best, its confirmation takes 5x
that. 8 trials x 6,000 steps (``--budget 6000 --evaluations 6``, the size of
tests/test_tune.py's slow study) is about 1.5x as long, 20-25 minutes. The first run also
creates ``benchmarks/.venvs/rlzoo`` (rl_zoo3 2.9.2, CPU torch 2.13.0, pandas; about a minute).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
# Imported first: sac_vs_sb3 sets, before jax is imported, XLA_FLAGS (one XLA thread), KERAS_BACKEND
# and an empty JAX compilation cache for this invocation (AQUAML_JAX_CACHE, removed at exit); the
# trial processes inherit all three, so AquaML's study pays for every compilation it needs, as a
# first study would.
from sac_vs_sb3 import pin_to_one_core, print_header, version  # noqa: E402,I001

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from peer_venv import peer_python  # noqa: E402

from aquaml.tune.confirm import FRESH_SEED  # noqa: E402  (1000: the first seed of a confirmation)

HERE = Path(__file__).resolve().parent
ENV_ID = "Pendulum-v1"
#: pandas: rl_zoo3 2.9.2 writes its report with Optuna's trials_dataframe() but does not require pandas
RLZOO_REQUIREMENTS = ["rl_zoo3==2.9.2", "torch==2.13.0", "pandas"]
EPOCH_STEPS = 50  #: AquaML SAC's env steps per epoch (update_interval's default)


@dataclass
class Side:
    name: str
    wall_s: float = math.nan  #: the study as its user waits for it
    span_s: float = math.nan  #: first trial's start to last trial's end, from the study's storage
    states: dict = field(default_factory=dict)  #: complete / pruned / fail counts
    best_trial: int | None = None
    best_value: float = math.nan
    best_config: str = ""
    confirm_s: float = math.nan
    confirmed: list = field(default_factory=list)  #: each fresh seed's final mean return

    @property
    def mean(self) -> float:
        return statistics.fmean(self.confirmed) if self.confirmed else math.nan

    @property
    def std(self) -> float:
        return statistics.pstdev(self.confirmed) if len(self.confirmed) > 1 else 0.0 if self.confirmed else math.nan


def count_states(states: list[str]) -> dict:
    return {s: states.count(s) for s in ("complete", "pruned", "fail")}


# -- AquaML ---------------------------------------------------------------------------------
def run_aquaml(args, root: Path) -> Side:
    from optuna.trial import TrialState

    from aquaml.tune import TuneConfig, tune
    from aquaml.tune.trial import run_trial

    side = Side("AquaML")
    sets = {"display_interval": str(args.budget // args.evaluations // EPOCH_STEPS),
            "calculate_episodes": str(args.eval_episodes)}
    cfg = TuneConfig("sac", ENV_ID, args.trials, args.budget, seeds=1, workers=1, sampler="tpe", pruner="median",
                     study="aquaml", folder=str(root / "aquaml"), last_evals=1, sampler_seed=args.seed, sets=sets)
    print(f"AquaML study: {args.trials} trials x {args.budget} steps (folder {cfg.path}) ...", flush=True)
    start = time.perf_counter()
    study = tune(cfg, log=lambda line: print(f"  AquaML {line}", flush=True))
    side.wall_s = time.perf_counter() - start
    trials = study.get_trials(deepcopy=False)
    side.states = count_states([t.state.name.lower() for t in trials])
    side.span_s = (max(t.datetime_complete for t in trials if t.datetime_complete)
                   - min(t.datetime_start for t in trials if t.datetime_start)).total_seconds()
    complete = [t for t in trials if t.state == TrialState.COMPLETE and math.isfinite(t.value)]
    if not complete:
        print("  AquaML: no complete trial, nothing to confirm")
        return side
    best = max(complete, key=lambda t: t.value)
    assignments = best.user_attrs["assignments"]
    side.best_trial, side.best_value = best.number, best.value
    side.best_config = ", ".join(f"{k}={v}" for k, v in assignments.items()) + (
        " (the default configuration)" if best.user_attrs.get("default") else "")
    # the confirmation: fresh seeds, no pruning, one evaluation (the last epoch's) of confirm_episodes episodes
    epochs = math.ceil(args.budget / EPOCH_STEPS)
    confirm_sets = {**cfg.sets, **assignments, "display_interval": str(epochs),
                    "calculate_episodes": str(args.confirm_episodes)}
    seeds = list(range(FRESH_SEED, FRESH_SEED + args.confirm_seeds))
    print(f"AquaML: confirming trial {best.number} on seeds {seeds[0]}..{seeds[-1]} ...", flush=True)
    start = time.perf_counter()
    outcome = run_trial("sac", ENV_ID, args.budget, seeds, confirm_sets, cfg.path / "confirm",
                        lambda value, step: False, "eval_return_mean", 1, "mean")
    side.confirm_s = time.perf_counter() - start
    if outcome.state != "complete":
        raise RuntimeError(f"AquaML's confirmation failed:\n{outcome.error}")
    side.confirmed = list(outcome.seed_values)
    return side


# -- RL Zoo -----------------------------------------------------------------------------------
def run_rlzoo(args, root: Path, pinned: set[int] | None) -> tuple[Side, dict]:
    python = peer_python("rlzoo", RLZOO_REQUIREMENTS)
    side = Side("RL Zoo")
    folder = root / "rlzoo"
    folder.mkdir(parents=True, exist_ok=True)
    journal, study_name = folder / "journal.log", "rlzoo"
    pin = ["taskset", "-c", ",".join(map(str, sorted(pinned)))] if pinned else []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*pin, str(python), "-m", "rl_zoo3.train", "--algo", "sac", "--env", ENV_ID, "-optimize",
           "--n-trials", str(args.trials), "--n-timesteps", str(args.budget), "--sampler", "tpe",
           "--pruner", "median", "--n-startup-trials", str(args.rlzoo_startup_trials),
           "--n-evaluations", str(args.evaluations), "--eval-episodes", str(args.eval_episodes), "--n-jobs", "1",
           "--seed", str(args.seed), "--storage", str(journal), "--study-name", study_name, "--no-optim-plots",
           "--device", "cpu", "--num-threads", "1", "-f", str(folder / "logs")]
    print(f"RL Zoo study: {' '.join(cmd[len(pin):])} ...", flush=True)
    log_path = folder / "train.log"
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
        side.wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"RL Zoo's study failed (exit {proc.returncode}):\n{log_path.read_text()[-3000:]}")
    print(f"RL Zoo: confirming the best trial on seeds {FRESH_SEED}..{FRESH_SEED + args.confirm_seeds - 1} ...",
          flush=True)
    cmd = [*pin, str(python), str(HERE / "rlzoo_tune_runner.py"), str(journal), study_name, str(args.budget),
           str(args.confirm_seeds), str(args.confirm_episodes), str(FRESH_SEED)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    side.confirm_s = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"RL Zoo's confirmation failed:\n{out.stderr[-3000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    summary = next(r["summary"] for r in rows if "summary" in r)
    trials = summary["trials"]
    for t in trials:
        value = "" if t["value"] is None else f", objective {t['value']:.2f}"
        print(f"  RL Zoo trial {t['number']}: {t['state']}{value}")
    side.states = count_states([t["state"] for t in trials])
    starts, ends = [t["start"] for t in trials if t["start"]], [t["end"] for t in trials if t["end"]]
    side.span_s = max(ends) - min(starts) if starts and ends else math.nan
    if summary["best"] is not None:
        best = summary["best"]
        side.best_trial, side.best_value = best["number"], best["value"]
        side.best_config = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        side.best_config += "; as SB3 arguments: " + ", ".join(f"{k}={v}" for k, v in best["sb3_kwargs"].items())
        side.confirmed = [r["confirm"]["return"] for r in rows if "confirm" in r]
    else:
        print("  RL Zoo: no complete trial, nothing to confirm")
    return side, summary["versions"]


# -- report ---------------------------------------------------------------------------------------
def fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def print_table(sides: list[Side], args) -> None:
    rows = [("study wall time (s)", [fmt(s.wall_s) for s in sides]),
            ("  trials' span in storage (s)", [fmt(s.span_s) for s in sides]),
            ("trials complete/pruned/failed", ["/".join(str(s.states.get(k, 0)) for k in ("complete", "pruned", "fail"))
                                               if s.states else "-" for s in sides]),
            ("best trial: objective", [f"{s.best_trial}: {fmt(s.best_value, '.2f')}" if s.best_trial is not None
                                       else "-" for s in sides]),
            (f"confirmed ({args.confirm_seeds} fresh seeds)", [f"{fmt(s.mean, '.2f')} +- {fmt(s.std, '.2f')}"
                                                             if s.confirmed else "-" for s in sides]),
            ("  confirmation wall time (s)", [fmt(s.confirm_s) for s in sides])]
    print("\n{:<32}".format("") + "".join(f"{s.name:>20}" for s in sides))
    for label, cells in rows:
        print(f"{label:<32}" + "".join(f"{c:>20}" for c in cells))
    for s in sides:
        if s.best_config:
            print(f"\n{s.name} best configuration (trial {s.best_trial}): {s.best_config}")
            print(f"{s.name} confirmed per seed: " + ", ".join(f"{v:.1f}" for v in s.confirmed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--budget", type=int, default=4000, help="env steps per trial (and per confirmation run)")
    parser.add_argument("--evaluations", type=int, default=4, help="evaluations per trial (pruning checkpoints)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="deterministic episodes per study evaluation")
    parser.add_argument("--confirm-seeds", type=int, default=5)
    parser.add_argument("--confirm-episodes", type=int, default=10, help="deterministic episodes per confirmation")
    parser.add_argument("--seed", type=int, default=0, help="the samplers' seed")
    parser.add_argument("--rlzoo-startup-trials", type=int, default=2,
                        help="RL Zoo's --n-startup-trials (its TPE's and its median pruner's start)")
    parser.add_argument("--skip-aquaml", action="store_true")
    parser.add_argument("--skip-rlzoo", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin both sides to one core")
    parser.add_argument("--keep", metavar="DIR", help="keep both study folders under DIR (default: a temporary one)")
    args = parser.parse_args()
    for name in ("trials", "budget", "evaluations", "eval_episodes", "confirm_seeds", "confirm_episodes"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.budget % (args.evaluations * EPOCH_STEPS):
        parser.error(f"--budget must be a multiple of --evaluations x {EPOCH_STEPS} (AquaML SAC's epoch), so both "
                     "sides evaluate at the same env steps")

    pinned = None if args.no_pin else pin_to_one_core()
    print_header(pinned)
    print(f"AquaML side: optuna {version('optuna')}; JAX cache {os.environ['AQUAML_JAX_CACHE']}")
    print(f"SAC on {ENV_ID}: {args.trials} trials x {args.budget} env steps, {args.evaluations} evaluations of "
          f"{args.eval_episodes} deterministic episodes per trial, TPE (seed {args.seed}), median pruner, one trial "
          f"at a time; confirmation: {args.confirm_seeds} fresh seeds x {args.budget} steps, "
          f"{args.confirm_episodes} episodes\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="tune-vs-rlzoo-") as tmp:
        root = Path(args.keep).resolve() if args.keep else Path(tmp)
        if args.keep and root.exists() and any(root.iterdir()):
            parser.error(f"--keep {root} is not empty (the studies would continue the old ones)")
        sides, peer = [], None
        if not args.skip_aquaml:
            sides.append(run_aquaml(args, root))
        if not args.skip_rlzoo:
            rlzoo, peer = run_rlzoo(args, root, pinned)
            sides.append(rlzoo)
    if peer:
        print("\nRL Zoo side: " + "; ".join(f"{k} {v}" for k, v in peer.items()))
    print_table(sides, args)
    if len(sides) == 2:
        ours, theirs = sides
        print(f"\nRL Zoo / AquaML study wall time: {theirs.wall_s / ours.wall_s:.2f}x "
              f"(trials' span: {theirs.span_s / ours.span_s:.2f}x)")
        if ours.confirmed and theirs.confirmed:
            diff = ours.mean - theirs.mean
            print(f"confirmed score, AquaML - RL Zoo: {diff:+.2f} (stds {ours.std:.2f} and {theirs.std:.2f} over "
                  f"{args.confirm_seeds} seeds; higher is better)")


if __name__ == "__main__":
    main()
