"""The spread of the learning tests' scores over seeds on this machine:

    python benchmarks/spread.py sac_pendulum --seeds 0,1,2,3,4 --evals 8

prints every seed's evaluation history, the mean of its last ``--last`` evaluations (the
statistic the tests assert) and the first env step (or gradient step, offline) at which an
evaluation reached the test's threshold. The runs are those of ``benchmarks/learning_runs.py``;
the Pendulum imitation tasks use the expert, demonstrations and medium-replay data of
``benchmarks/pendulum_data.py``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_runs import (Run, last_mean, offline, ppo_cartpole, ppo_generator, sac_generator, sac_pendulum,  # noqa: E402
                           sac_reacher, td3_pendulum, train)
from recipes import reacher_data  # noqa: E402

ONLINE = ("sac_pendulum", "td3_pendulum", "ppo_cartpole", "sac_reacher")  #: tasks that need no dataset
REACHER = ("td3bc_reacher", "bc_reacher")  #: offline tasks on the scripted Reacher demonstrations


# name -> (threshold, whether it is on the normalised return, run builder taking (seed, steps or 0, evals))
def _tasks(data) -> dict[str, tuple[float, bool, Callable[..., Run]]]:
    # the Pendulum data (expert demonstrations, medium-replay) or the scripted Reacher demonstrations
    demos = str(getattr(data, "expert_demos", None) or getattr(data, "demos", "")) if data else ""
    replay = str(getattr(data, "medium_replay", "")) if data else ""
    return {
        "sac_pendulum": (-200, False, lambda s, n, e: sac_pendulum(s, n or 20_000, e)),
        "td3_pendulum": (-200, False, lambda s, n, e: td3_pendulum(s, n or 20_000, e)),
        "ppo_cartpole": (475, False, lambda s, n, e: ppo_cartpole(s, n or 99_328, e)),
        "sac_reacher": (-10, False, lambda s, n, e: sac_reacher(s, n or 20_000, e)),
        "td3bc_reacher": (0.8, True, lambda s, n, e: offline("td3bc", demos, s, n or 5_000, e, env="Reacher-v5")),
        "bc_reacher": (0.8, True, lambda s, n, e: offline("bc", demos, s, n or 5_000, e, env="Reacher-v5")),
        "iql_medium_replay": (0.7, True, lambda s, n, e: offline("iql", replay, s, n or 10_000, e)),
        "td3bc_medium_replay": (0.7, True, lambda s, n, e: offline("td3bc", replay, s, n or 10_000, e)),
        "bc_medium_replay": (0.7, True, lambda s, n, e: offline("bc", replay, s, n or 10_000, e)),
        "iql_medium_replay_128": (0.7, True, lambda s, n, e: offline("iql", replay, s, n or 10_000, e, hidden_sizes=(128, 128))),
        "iql_medium_replay_64": (0.7, True, lambda s, n, e: offline("iql", replay, s, n or 10_000, e, hidden_sizes=(64, 64))),
        "td3bc_medium_replay_64": (0.7, True, lambda s, n, e: offline("td3bc", replay, s, n or 10_000, e, hidden_sizes=(64, 64))),
        "gail": (0.75, True, lambda s, n, e: sac_generator("gail", demos, s, n or 15_000, e)),
        "amp": (0.6, True, lambda s, n, e: sac_generator("amp", demos, s, n or 15_000, e)),
        "airl": (0.6, True, lambda s, n, e: sac_generator("airl", demos, s, n or 20_000, e)),
        "gail_ppo": (0.75, True, lambda s, n, e: ppo_generator("gail_ppo", demos, s, n or 100_352, e)),
        "airl_ppo": (0.6, True, lambda s, n, e: ppo_generator("airl_ppo", demos, s, n or 100_352, e)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", help="one of: " + ", ".join(_tasks(None)))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=0, help="env steps (gradient steps offline); 0: the test's")
    parser.add_argument("--evals", type=int, default=8, help="evaluations per run")
    parser.add_argument("--last", type=int, default=2, help="evaluations averaged")
    args = parser.parse_args()
    data = None
    scratch = Path(tempfile.mkdtemp())
    if args.task in REACHER:
        data = reacher_data(scratch)
    elif args.task not in ONLINE:
        from pendulum_data import pendulum_data

        data = pendulum_data(scratch)
    threshold, normalised, build = _tasks(data)[args.task]
    score = data.normalized if normalised else float
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        run = build(seed, args.steps, args.evals)
        start = time.perf_counter()
        summary = train(run, scratch / "runs")
        took = time.perf_counter() - start
        history = [(step, round(score(r), 3)) for step, r in summary.eval_history]
        first = next((step for step, r in history if r >= threshold), None)
        stat = score(last_mean(summary, args.last))
        rows.append(stat)
        print(json.dumps({"task": args.task, "seed": seed, "seconds": round(took, 1), "history": history,
                          f"last{args.last}": round(stat, 3), "first_at_threshold": first}), flush=True)
    print(f"{args.task}: mean of last {args.last} over seeds: min {min(rows):.3f}, mean {np.mean(rows):.3f}, "
          f"max {max(rows):.3f} (threshold {threshold})")


if __name__ == "__main__":
    main()
