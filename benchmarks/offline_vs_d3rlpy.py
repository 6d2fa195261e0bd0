"""AquaML's bc, td3bc and iql against d3rlpy on the same local dataset, one CPU thread each.

d3rlpy 2.8 pins gymnasium 1.0.0 and needs torch, so it runs in its own virtual environment,
``benchmarks/.venvs/d3rlpy`` (created on first use: ``pip install d3rlpy==2.8.1 torch==2.13.0``),
through ``benchmarks/d3rlpy_runner.py``; both processes are pinned to the same single core.

Data (written once to ``benchmarks/.data/``): Pendulum-v1 "medium-replay", the replay buffer of a
slow SAC run stopped at a third of the expert's normalised score (``benchmarks/recipes.py``, the
recipe of tests/test_imitation_learning.py). ``R_expert`` comes from a SAC expert trained here
(20k steps) and ``R_random`` from random actions, both over 20 held-out episodes.

Same settings in both: batch 256, 256x256 ReLU networks, learning rate 3e-4, observation
standardisation, TD3+BC alpha 40 (Pendulum's large negative returns shrink alpha / mean|Q|;
see docs/imitation.md), IQL expectile 0.7, temperature 3, max weight 100, BC a Gaussian
policy. Printed per algorithm: milliseconds per gradient step (training only, after a
1,000-step warm-up that holds the compilation), the normalised score of the deterministic
policy on the same 10 evaluation episodes, and d3rlpy's time per step over AquaML's (target
>= 3x at an equal score).

Run from the repository root:  python benchmarks/offline_vs_d3rlpy.py [--steps 20000] [--algos bc,td3bc,iql]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
# Sets XLA_FLAGS (one XLA thread); must come before anything imports jax.
from sac_vs_sb3 import pin_to_one_core, print_header, verdict  # noqa: E402

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


from aquaml import RLTaskStarter  # noqa: E402
from aquaml.algorithm import ALGORITHMS  # noqa: E402
from aquaml.data import load_dataset  # noqa: E402
from aquaml.sampler import episode_seed  # noqa: E402
from aquaml.starter.loop import Hook  # noqa: E402
from peer_venv import peer_python  # noqa: E402
from pendulum_data import pendulum_data  # noqa: E402

HERE = Path(__file__).resolve().parent
WARMUP = 1000
SETTINGS = dict(batch_size=256, hidden=[256, 256], lr=3e-4, alpha=40.0, expectile=0.7, temperature=3.0,
                max_weight=100.0, warmup=WARMUP)


class StepClock(Hook):
    """Times the gradient steps after the warm-up epoch (which holds the compilation)."""

    def __init__(self) -> None:
        self.marks: dict[int, float] = {}

    def on_epoch(self, loop) -> None:
        self.marks[loop.counters.grad_steps] = time.perf_counter()


def aquaml_run(name: str, path: Path, steps: int, seed: int, root: Path) -> tuple[float, list[float]]:
    algo = ALGORITHMS[name]
    extra = {"td3bc": {"alpha": SETTINGS["alpha"]},
             "iql": {"expectile": SETTINGS["expectile"], "temperature": SETTINGS["temperature"],
                     "max_weight": SETTINGS["max_weight"]}}.get(name, {})
    params = algo.Parameters(dataset=str(path), n_epochs=steps // WARMUP, update_times=WARMUP,
                             batch_size=SETTINGS["batch_size"], hidden_sizes=tuple(SETTINGS["hidden"]),
                             learning_rate=SETTINGS["lr"], display_interval=10**6, calculate_episodes=10,
                             store_model_times=10**6, seed=seed, **extra)
    clock = StepClock()
    starter = RLTaskStarter("Pendulum-v1", None, algo, params, run_root=root, progress=False, hooks=[clock])
    starter.run()
    returns, _ = starter.evaluate(10)
    starter.close()
    per_step = (clock.marks[steps] - clock.marks[WARMUP]) / (steps - WARMUP)
    return 1000 * per_step, list(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--algos", default="bc,td3bc,iql")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    python = peer_python("d3rlpy", ["d3rlpy==2.8.1", "torch==2.13.0"])
    pinned = None if args.no_pin else pin_to_one_core()
    print_header(pinned)
    with tempfile.TemporaryDirectory() as tmp:
        data = pendulum_data(Path(tmp))
        path, expert, random, norm = data.medium_replay, data.expert_return, data.random_return, data.normalized
        ds = load_dataset(path)
        print(f"dataset {path.name}: {ds.n_episodes} episodes, {ds.n_steps} steps, data normalised score "
              f"{norm(ds.returns()):.2f}; R_expert {expert:.1f}, R_random {random:.1f}; {args.steps} gradient steps\n")
        # AquaML's evaluation episodes: the same initial states for d3rlpy
        seeds = [episode_seed(args.seed, 1, k) for k in range(10)]
        settings = {**SETTINGS, "eval_seeds": seeds}
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        print(f"{'algo':6} {'AquaML ms/step':>14} {'d3rlpy ms/step':>14} {'ratio':>6} {'AquaML score':>12} "
              f"{'d3rlpy score':>12}")
        for name in args.algos.split(","):
            ours, our_returns = aquaml_run(name, path, args.steps, args.seed, Path(tmp))
            cmd = [str(python), str(HERE / "d3rlpy_runner.py"), str(path), name, str(args.steps), str(args.seed),
                   json.dumps(settings)]
            if pinned:
                cmd = ["taskset", "-c", ",".join(map(str, sorted(pinned))), *cmd]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise RuntimeError(f"d3rlpy {name} failed:\n{out.stderr[-3000:]}")
            theirs = json.loads(out.stdout.strip().splitlines()[-1])
            ratio = theirs["per_step_ms"] / ours
            print(f"{name:6} {ours:14.2f} {theirs['per_step_ms']:14.2f} {ratio:5.2f}x {norm(our_returns):12.2f} "
                  f"{norm(theirs['returns']):12.2f}   speed {verdict(ratio >= 3)}", flush=True)
        print(f"\nd3rlpy side: {theirs['versions']}")


if __name__ == "__main__":
    main()
