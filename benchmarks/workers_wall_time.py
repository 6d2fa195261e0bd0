"""Wall time to the learning thresholds with sampler workers against in-process sampling.

One invocation trains, per seed:

- SAC on Pendulum-v1, 20,000 env steps (2 envs x 25 steps per epoch, 50 gradient steps per
  epoch, batch 256), threshold -200: in-process; 2 workers; 2 workers with ``overlap``
  (collection during the gradient steps, double-buffered acting);
- PPO on CartPole-v1, 99,328 env steps (8 envs x 128 steps), threshold 475: in-process;
  2 workers; 2 workers with ``overlap`` (double-buffered acting).

Prints training time (evaluations excluded, compilation included: the first run of each
algorithm fills this invocation's empty compilation cache, so it is run once untimed first),
the first evaluation at the threshold and the final return, and each mode's time over the
in-process time.

Run from the repository root:  python benchmarks/workers_wall_time.py [--seeds 0,1]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from sac_vs_sb3 import print_header  # noqa: E402  (sets XLA_FLAGS and an empty compilation cache)

import argparse  # noqa: E402
import csv  # noqa: E402
import tempfile  # noqa: E402

from aquaml.algorithm import PPO, SAC, PPOParameters, SACParameters  # noqa: E402
from aquaml.starter import RLTaskStarter  # noqa: E402

MODES = {"in-process": (0, False), "2 workers": (2, False), "2 workers+overlap": (2, True)}
TASKS = {
    "sac": ("Pendulum-v1", SAC, -200.0, lambda seed, overlap: SACParameters(
        n_epochs=400, n_envs=2, update_interval=25, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=40, calculate_episodes=10, seed=seed, overlap=overlap)),
    "ppo": ("CartPole-v1", PPO, 475.0, lambda seed, overlap: PPOParameters(
        n_epochs=97, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10, learning_rate=3e-4,
        ent_coef=0.0, max_grad_norm=0.5, hidden_sizes=(64, 64), normalize_obs=True, display_interval=10,
        calculate_episodes=10, seed=seed, overlap=overlap)),
}


def train(task: str, seed: int, n_workers: int, overlap: bool):
    env, algo, _, make_params = TASKS[task]
    with tempfile.TemporaryDirectory() as root:
        starter = RLTaskStarter(env, None, algo, make_params(seed, overlap), run_root=root, progress=False,
                                n_workers=n_workers)
        summary = starter.run()
        starter.close()
        with open(summary.run_dir / "progress.csv", newline="") as f:
            rows = [(int(r["env_steps"]), float(r["eval_return_mean"]), float(r["train_time_s"]))
                    for r in csv.DictReader(f)]
    return summary, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--tasks", default="sac,ppo")
    args = parser.parse_args()
    print_header(None)
    print(f"{'task':<5} {'seed':>4}  {'mode':<18} {'train_s':>8} {'vs in-proc':>10} {'first@thr':>9} "
          f"{'s@thr':>6} {'final':>8}")
    for task in args.tasks.split(","):
        threshold = TASKS[task][2]
        train(task, 0, 0, False)  # fills the compilation cache: every timed run below is warm
        for seed in (int(s) for s in args.seeds.split(",")):
            base = None
            for mode, (n_workers, overlap) in MODES.items():
                summary, rows = train(task, seed, n_workers, overlap)
                hit = next((r for r in rows if r[1] >= threshold), None)
                base = base or summary.train_time_s
                print(f"{task:<5} {seed:>4}  {mode:<18} {summary.train_time_s:>8.2f} "
                      f"{summary.train_time_s / base:>9.2f}x {hit[0] if hit else '-':>9} "
                      f"{f'{hit[2]:.2f}' if hit else '-':>6} {summary.final_eval_return:>8.1f}")


if __name__ == "__main__":
    main()
