"""AquaML's GAIL (SAC and PPO generators) against the ``imitation`` library's GAIL from the same demonstrations.

``imitation`` 1.0 pins gymnasium 0.29 and Stable-Baselines3 2.2, so it runs in its own virtual
environment, ``benchmarks/.venvs/imitation`` (created on first use), through
``benchmarks/imitation_runner.py``; both processes are pinned to the same single core.

Demonstrations: 10 deterministic episodes of a SAC expert on Pendulum-v1
(``benchmarks/pendulum_data.py``). AquaML: GAIL with the settings of the learning test
(50 env steps then 50 gradient steps, batch 256, 64x64 networks, lr 1e-3, logit reward,
gradient penalty 1); with ``--ppo-steps`` also GAIL with a PPO generator (``gail_ppo``: 8 envs x
256 steps per rollout, gamma 0.9, lr 1e-3, initial log-std -1, 4 discriminator passes per
rollout), the like-for-like comparison. imitation: its GAIL with a PPO generator on RL Zoo's tuned Pendulum
settings (4 envs x 1024 steps, gamma 0.9, 10 epochs, lr 1e-3, gSDE), demo batch 1024, 4
discriminator updates per round. Both are evaluated on the same 10 deterministic episodes;
printed: env steps and training seconds (evaluations excluded) to a normalised score of 0.75,
and the ratios imitation / AquaML (targets >= 5x fewer env steps and >= 5x less wall time). A
side that does not get there within its budget is reported with the best score it reached.

Run from the repository root:  python benchmarks/gail_vs_imitation.py [--aquaml-steps 30000]
  [--ppo-steps 200704] [--imitation-steps 300000] [--chunk 20480]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from sac_vs_sb3 import pin_to_one_core, print_header, verdict  # noqa: E402

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from aquaml import RLTaskStarter  # noqa: E402
from aquaml.algorithm import GAIL, GAILPPO, GAILParameters, GAILPPOParameters  # noqa: E402
from aquaml.sampler import episode_seed  # noqa: E402
from peer_venv import peer_python  # noqa: E402
from pendulum_data import pendulum_data  # noqa: E402

HERE = Path(__file__).resolve().parent
THRESHOLD = 0.75


def first_reaching(curve, normalized) -> tuple | None:
    """``(env steps, train seconds, score)`` of the first evaluation at or above the threshold."""
    return next(((s, t, normalized(r)) for s, t, r in curve if normalized(r) >= THRESHOLD), None)


def curve_of(algo, params, tmp) -> list[tuple[int, float, float]]:
    """``(env steps, train seconds, eval return)`` at every evaluation of a run."""
    starter = RLTaskStarter("Pendulum-v1", None, algo, params, run_root=tmp, progress=False)
    summary = starter.run()
    starter.close()
    with open(summary.run_dir / "progress.csv", newline="") as f:
        return [(int(r["env_steps"]), float(r["train_time_s"]), float(r["eval_return_mean"])) for r in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aquaml-steps", type=int, default=30_000)
    parser.add_argument("--ppo-steps", type=int, default=0, help="also AquaML's gail_ppo for this many env steps")
    parser.add_argument("--imitation-steps", type=int, default=300_000)
    parser.add_argument("--chunk", type=int, default=20_480, help="imitation env steps between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    python = peer_python("imitation", ["imitation==1.0.1", "torch==2.13.0"])
    pinned = None if args.no_pin else pin_to_one_core()
    print_header(pinned)
    with tempfile.TemporaryDirectory() as tmp:
        data = pendulum_data(Path(tmp))
        print(f"R_expert {data.expert_return:.1f}, R_random {data.random_return:.1f}; threshold {THRESHOLD}\n")
        params = GAILParameters(dataset=str(data.expert_demos), n_epochs=args.aquaml_steps // 50, update_interval=50,
                                update_times=50, batch_size=256, learning_rate=1e-3, hidden_sizes=(64, 64),
                                display_interval=10, calculate_episodes=10, seed=args.seed, store_model_times=10**6)
        ours = curve_of(GAIL, params, tmp)
        curves = [("AquaML GAIL (SAC)", ours)]
        if args.ppo_steps:
            ppo = GAILPPOParameters(dataset=str(data.expert_demos), n_envs=8, rollout_length=256, batch_size=256,
                                    discount=0.9, learning_rate=1e-3, log_std_init=-1.0, n_epochs=args.ppo_steps // 2048,
                                    display_interval=2, calculate_episodes=10, seed=args.seed, store_model_times=10**6)
            curves.append(("AquaML GAIL (PPO)", curve_of(GAILPPO, ppo, tmp)))
        seeds = [episode_seed(args.seed, 1, k) for k in range(10)]  # AquaML's evaluation episodes
        cmd = [str(python), str(HERE / "imitation_runner.py"), str(data.expert_demos), str(args.imitation_steps),
               str(args.chunk), str(args.seed), json.dumps({"eval_seeds": seeds})]
        if pinned:
            cmd = ["taskset", "-c", ",".join(map(str, sorted(pinned))), *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if out.returncode != 0:
            raise RuntimeError(f"imitation failed:\n{out.stderr[-3000:]}")
        # Stable-Baselines3 prints its own tables to stdout: the runner's lines are the JSON ones
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        theirs = [(r["env_steps"], r["train_s"], r["returns"]) for r in rows]
        ours_hit = first_reaching(ours, data.normalized)
        theirs_hit = first_reaching(theirs, data.normalized)
        for name, curve in (*curves, ("imitation GAIL (PPO)", theirs)):
            hit, best = first_reaching(curve, data.normalized), max(data.normalized(r) for _, _, r in curve)
            print(f"{name}: " + (f"{THRESHOLD} at {hit[0]} env steps, {hit[1]:.1f} s of training" if hit else
                                 f"not {THRESHOLD} within {curve[-1][0]} env steps ({curve[-1][1]:.1f} s); best "
                                 f"{best:.2f}") + f"; final {data.normalized(curve[-1][2]):.2f}")
        if ours_hit and theirs_hit:
            steps, wall = theirs_hit[0] / ours_hit[0], theirs_hit[1] / ours_hit[1]
            print(f"\nimitation / AquaML: env steps {steps:.1f}x ({verdict(steps >= 5)}), wall time {wall:.1f}x "
                  f"({verdict(wall >= 5)})")
        elif ours_hit:
            print(f"\nimitation did not reach {THRESHOLD}: the ratios are at least "
                  f"{theirs[-1][0] / ours_hit[0]:.1f}x env steps and {theirs[-1][1] / ours_hit[1]:.1f}x wall time")
        ppo_hit = first_reaching(curves[-1][1], data.normalized) if args.ppo_steps else None
        if ppo_hit:  # both PPO generators: the algorithm is the same, the implementations differ
            bound = "" if theirs_hit else "at least "
            ref = theirs_hit or theirs[-1]
            print(f"imitation / AquaML, both with PPO generators: {bound}{ref[0] / ppo_hit[0]:.1f}x env steps, "
                  f"{bound}{ref[1] / ppo_hit[1]:.1f}x wall time")


if __name__ == "__main__":
    main()
