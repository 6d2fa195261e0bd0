"""AquaML against Stable-Baselines3 on MuJoCo tasks (issue 21), side by side, one core each, resumable.

Both frameworks train with RL Zoo's hyperparameters: AquaML through its presets
(``aquaml/algorithm/presets/*.yaml``, taken from RL Zoo's files), SB3 with the same RL Zoo entries
written out below. Every run evaluates 10 deterministic episodes every twentieth of its length
(AquaML's default ``eval_every``; SB3's ``EvalCallback`` at the same steps) and writes a folder
``aquaml plot curves|aggregate|table`` reads:

    ROOT/aquaml/<algo>/<env>_s<seed>/<timestamp>/      AquaML run folders
    ROOT/sb3/<algo>/<env>_<seed>/evaluations.npz       RL Zoo's layout (logs/ALGO/ENV_N)

Resumable: each AquaML run checkpoints at every evaluation and continues with ``--resume``
(bit-exact); each SB3 run saves its model, replay buffer and VecNormalize statistics (SB3's own
files) at every evaluation and continues from them (not bit-exact: SB3 does not restore its
random generators). Killing this script and running it again continues where it stopped.
Each training process is pinned to one core (``taskset``), XLA and PyTorch to one thread.

    python benchmarks/mujoco_vs_sb3.py run --algo ppo --envs Hopper-v5 --seeds 0,1,2 --frameworks aquaml,sb3
    python benchmarks/mujoco_vs_sb3.py matrix      # the issue's runs, one after another (hours)
    python benchmarks/mujoco_vs_sb3.py status      # steps done of every run
    python benchmarks/mujoco_vs_sb3.py report      # score table (IQM, 95% bootstrap intervals), wall times, figures

SB3 needs the bench extra (``pip install ".[bench]"``: stable-baselines3, torch, mujoco). The file
is not called ``mujoco.py``: scripts run from benchmarks/ would import it instead of the MuJoCo package.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROOT = HERE / "runs" / "mujoco"
EVALUATIONS = 20  #: evaluations per run, as AquaML's default eval_every
EVAL_EPISODES = 10

#: the issue's runs: (algo, envs, steps, AquaML seeds, SB3 seeds)
MATRIX = [
    ("sac", ("HalfCheetah-v5", "Hopper-v5"), 300_000, (0, 1, 2), (0, 1)),
    ("td3", ("HalfCheetah-v5", "Hopper-v5"), 300_000, (0, 1, 2), (0, 1)),
    ("ppo", ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"), 1_000_000, (0, 1, 2), (0, 1, 2)),
]

# RL Zoo's entries (rl-baselines3-zoo hyperparams/*.yml: ppo.yml at 208b6fd, sac.yml at c94924e,
# td3.yml at d29756c) as SB3 keyword arguments; AquaML's presets hold the same numbers.
ZOO_PPO = {
    "HalfCheetah-v5": dict(batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
                           clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096),
    "Hopper-v5": dict(batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519,
                      clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671),
    "Walker2d-v5": dict(batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045,
                        clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923),
}


def sb3_model(algo: str, env_id: str, seed: int, env):
    """SB3's model with RL Zoo's settings for ``env_id`` (``env``: its training VecEnv)."""
    import torch.nn as nn
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise
    import numpy as np

    if algo == "sac":  # mujoco-defaults: SB3's defaults and learning_starts 10000
        return SAC("MlpPolicy", env, learning_starts=10_000, seed=seed, verbose=0, device="cpu")
    if algo == "td3":
        n = env.action_space.shape[0]
        return TD3("MlpPolicy", env, learning_starts=10_000, train_freq=1, gradient_steps=1, learning_rate=1e-3,
                   batch_size=256, action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
                   policy_kwargs=dict(net_arch=[400, 300]), seed=seed, verbose=0, device="cpu")
    policy_kwargs = dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU,
                         net_arch=dict(pi=[256, 256], vf=[256, 256]))
    return PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, verbose=0, device="cpu",
               **ZOO_PPO[env_id])


# -- one SB3 run (a subprocess of this script) -------------------------------------------------
def sb3_worker(algo: str, env_id: str, seed: int, steps: int, folder: Path) -> None:
    """Train (or continue) one SB3 run in ``folder`` to ``steps`` env steps."""
    import numpy as np
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    state_file, every = folder / "state.json", steps // EVALUATIONS
    state = json.loads(state_file.read_text()) if state_file.exists() else {"steps": 0, "wall_s": 0.0, "cpu_s": 0.0,
                                                                            "evals": []}
    cpu_started, cpu_at_start = time.process_time(), state.get("cpu_s", 0.0)
    # training seconds of this run's earlier processes; None where they are unknown (runs of the
    # version before 2026-12-03, which added each process's seconds more than once)
    wall_at_start = state["wall_s"]
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 10_000)
    if algo == "ppo":  # RL Zoo's normalize: true
        env, eval_env = VecNormalize(env), VecNormalize(eval_env, training=False, norm_reward=False)
        if (folder / "ckpt_vecnorm.pkl").exists():
            env = VecNormalize.load(str(folder / "ckpt_vecnorm.pkl"), env.venv)
    model = sb3_model(algo, env_id, seed, env)
    if state["steps"]:
        model = type(model).load(str(folder / "ckpt_model.zip"), env=env, device="cpu")
        if hasattr(model, "replay_buffer"):
            model.load_replay_buffer(str(folder / "ckpt_buffer.pkl"))

    def save(now: int, wall: float | None) -> None:
        """Everything the next resume reads, each file replaced atomically."""
        model.save(str(folder / "ckpt_model.tmp.zip"))
        os.replace(folder / "ckpt_model.tmp.zip", folder / "ckpt_model.zip")
        if hasattr(model, "replay_buffer"):
            model.save_replay_buffer(str(folder / "ckpt_buffer.tmp.pkl"))
            os.replace(folder / "ckpt_buffer.tmp.pkl", folder / "ckpt_buffer.pkl")
        if isinstance(env, VecNormalize):
            env.save(str(folder / "ckpt_vecnorm.tmp.pkl"))
            os.replace(folder / "ckpt_vecnorm.tmp.pkl", folder / "ckpt_vecnorm.pkl")
        state.update(steps=now, wall_s=wall, cpu_s=cpu_at_start + time.process_time() - cpu_started)
        tmp = folder / "state.tmp.json"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_file)
        ts = [e[0] for e in state["evals"]]  # RL Zoo's evaluations.npz, which aquaml plot reads
        np.savez(folder / "evaluations.npz", timesteps=np.array(ts), results=np.array([e[1] for e in state["evals"]]),
                 ep_lengths=np.array([e[2] for e in state["evals"]]))

    class EvalAndSave(BaseCallback):
        """Every ``every`` env steps: 10 deterministic episodes, then a checkpoint."""

        def __init__(self):
            super().__init__()
            self.started = time.perf_counter()
            self.train_s = 0.0

        def _on_step(self) -> bool:
            last = self.num_timesteps >= steps and (not state["evals"] or state["evals"][-1][0] < steps)
            # every `every` steps, and once after the last (a PPO rollout can end past it: its extra
            # steps are not evaluated again)
            if (self.num_timesteps % every == 0 and self.num_timesteps < steps) or last:
                self.train_s += time.perf_counter() - self.started
                if isinstance(env, VecNormalize):
                    sync_envs_normalization(env, eval_env)
                returns, lengths = evaluate_policy(model, eval_env, EVAL_EPISODES, deterministic=True,
                                                   return_episode_rewards=True)
                state["evals"].append((self.num_timesteps, [float(r) for r in returns], [int(n) for n in lengths]))
                print(f"sb3 {algo} {env_id} seed {seed}: {self.num_timesteps:,} steps, eval {np.mean(returns):.1f}",
                      flush=True)
                save(self.num_timesteps, None if wall_at_start is None else wall_at_start + self.train_s)
                self.started = time.perf_counter()
            return True

    callback = EvalAndSave()
    model.learn(steps - state["steps"], callback=callback, reset_num_timesteps=state["steps"] == 0)
    print(f"sb3 {algo} {env_id} seed {seed}: done, {state['wall_s']:.0f} s of training", flush=True)


# -- driving the runs --------------------------------------------------------------------------
def aquaml_run_dir(algo: str, env_id: str, seed: int) -> Path:
    return ROOT / "aquaml" / algo / f"{env_id}_s{seed}"


def sb3_run_dir(algo: str, env_id: str, seed: int) -> Path:
    return ROOT / "sb3" / algo / f"{env_id}_{seed}"


def aquaml_done(algo: str, env_id: str, seed: int, column: str) -> tuple[int, float]:
    """(env steps, ``column`` of progress.csv) of the newest AquaML run's last log row."""
    import csv

    runs = sorted(aquaml_run_dir(algo, env_id, seed).glob("*/progress.csv"))
    if not runs:
        return 0, 0.0
    rows = list(csv.DictReader(runs[-1].open()))
    return (int(rows[-1]["env_steps"]), float(rows[-1][column])) if rows else (0, 0.0)


def sb3_done(algo: str, env_id: str, seed: int, column: str) -> tuple[int, float | None]:
    """(env steps, the process's CPU seconds for ``cpu_time_s``, else its training wall seconds) of an SB3 run."""
    state = sb3_run_dir(algo, env_id, seed) / "state.json"
    if not state.exists():
        return 0, 0.0
    s = json.loads(state.read_text())
    return s["steps"], s["cpu_s"] if column == "cpu_time_s" else s["wall_s"]


def pinned(command: list[str], core: int | None) -> list[str]:
    return (["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []) + command


def run_one(framework: str, algo: str, env_id: str, seed: int, steps: int, core: int | None) -> subprocess.Popen:
    """Start (or continue) one run as a subprocess, pinned to ``core``."""
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip(),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if framework == "sb3":
        command = [sys.executable, str(Path(__file__).resolve()), "sb3-worker", algo, env_id, str(seed), str(steps),
                   str(sb3_run_dir(algo, env_id, seed))]
    else:
        folder = aquaml_run_dir(algo, env_id, seed)
        base = [sys.executable, "-m", "aquaml.cli", "train", algo, env_id, "--steps", str(steps), "-q"]
        if list(folder.glob("*/checkpoints/latest")):
            command = base + ["--resume", str(folder)]
        else:
            command = base + ["--seed", str(seed), "--name", folder.name, "--run-root", str(folder.parent),
                              "--set", "store_model_times=1", "--set", f"calculate_episodes={EVAL_EPISODES}"]
    log = (ROOT / "logs")
    log.mkdir(parents=True, exist_ok=True)
    out = open(log / f"{framework}_{algo}_{env_id}_{seed}.log", "a")
    return subprocess.Popen(pinned(command, core), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def todo(algo: str, envs, steps: int, seeds: dict[str, tuple[int, ...]]) -> list[tuple[str, str, int]]:
    """The unfinished runs, AquaML's and SB3's of one seed next to each other (so that with two cores
    the frameworks run side by side, under the same conditions)."""
    done = {"aquaml": aquaml_done, "sb3": sb3_done}
    every_seed = sorted({s for fw_seeds in seeds.values() for s in fw_seeds})
    return [(fw, env_id, seed) for env_id in envs for seed in every_seed for fw, fw_seeds in seeds.items()
            if seed in fw_seeds and done[fw](algo, env_id, seed)[0] < steps]


def run_all(jobs: list[tuple[str, str, str, int, int]], cores: list[int]) -> None:
    """Run ``jobs`` (framework, algo, env, seed, steps), one per core at a time."""
    pending, running = list(jobs), {}
    while pending or running:
        for core in cores:
            if core not in running and pending:
                fw, algo, env_id, seed, steps = pending.pop(0)
                print(f"start {fw} {algo} {env_id} seed {seed} on core {core}", flush=True)
                running[core] = (run_one(fw, algo, env_id, seed, steps, core), (fw, algo, env_id, seed))
        time.sleep(5)
        for core, (proc, what) in list(running.items()):
            if proc.poll() is not None:
                print(f"end {' '.join(map(str, what))}: exit {proc.returncode}", flush=True)
                del running[core]


def status() -> None:
    for algo, envs, steps, a_seeds, s_seeds in MATRIX:
        for env_id in envs:
            for fw, seeds, done in (("aquaml", a_seeds, aquaml_done), ("sb3", s_seeds, sb3_done)):
                for seed in seeds:
                    n, cpu = done(algo, env_id, seed, "cpu_time_s")
                    print(f"{algo:4} {env_id:15} {fw:6} seed {seed}: {n:>9,} / {steps:,} steps, {cpu / 60:6.1f} CPU min")


def report() -> None:
    """Score table per (algo, env) with aquaml plot table, and the time ratios of finished runs: the
    wall time of training (collecting and learning; evaluations and checkpoints left out on both
    sides) and the CPU time of the whole training process (which, unlike the wall time, does not
    grow when other work shares the machine)."""
    for algo, envs, steps, a_seeds, s_seeds in MATRIX:
        for env_id in envs:
            ratios = {}
            for column in ("train_time_s", "cpu_time_s"):
                a = [aquaml_done(algo, env_id, s, column) for s in a_seeds]
                b = [sb3_done(algo, env_id, s, column) for s in s_seeds]
                finished_a = [t for n, t in a if n >= steps and t is not None]
                finished_b = [t for n, t in b if n >= steps and t is not None]
                ratios[column] = (sum(finished_a) / len(finished_a)) / (sum(finished_b) / len(finished_b)) \
                    if finished_a and finished_b else float("nan")
            print(f"{algo} {env_id}: {len(finished_a)}/{len(a)} AquaML and {len(finished_b)}/{len(b)} SB3 runs "
                  f"finished; AquaML / SB3: training wall time {ratios['train_time_s']:.2f}, CPU time "
                  f"{ratios['cpu_time_s']:.2f}")
            folders = [str(aquaml_run_dir(algo, env_id, s)) for s in a_seeds] + \
                      [str(sb3_run_dir(algo, env_id, s)) for s in s_seeds]
            folders = [f for f in folders if Path(f).exists()]
            if folders:
                subprocess.run([sys.executable, "-m", "aquaml.cli", "plot", "table", *folders, "--group-by", "algo"],
                               cwd=REPO)


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="some runs")
    run.add_argument("--algo", required=True, choices=("ppo", "sac", "td3"))
    run.add_argument("--envs", required=True)
    run.add_argument("--seeds", default="0,1,2")
    run.add_argument("--steps", type=int)
    run.add_argument("--frameworks", default="aquaml,sb3")
    run.add_argument("--cores", default="0,1", help="cores to run on, one run per core")
    matrix = sub.add_parser("matrix", help="the issue's runs, resuming what is unfinished")
    matrix.add_argument("--cores", default="0,1")
    sub.add_parser("status")
    sub.add_parser("report")
    worker = sub.add_parser("sb3-worker")
    for name in ("algo", "env", "seed", "steps", "folder"):
        worker.add_argument(name)
    for command in (run, matrix, *(sub.choices[c] for c in ("status", "report"))):
        command.add_argument("--root", type=Path, default=ROOT, help=f"where the runs go (default {ROOT})")
    args = parser.parse_args()
    if getattr(args, "root", None) is not None:
        ROOT = args.root.resolve()
    if args.command == "sb3-worker":
        return sb3_worker(args.algo, args.env, int(args.seed), int(args.steps), Path(args.folder))
    if args.command == "status":
        return status()
    if args.command == "report":
        return report()
    cores = [int(c) for c in args.cores.split(",")]
    # yield to any other work (the tests): a niceness alone does not, where the kernel groups the
    # processes of each session (autogroup) and shares the CPU between the groups equally
    os.nice(19)
    try:
        Path("/proc/self/autogroup").write_text("19")
    except OSError:
        pass
    if args.command == "run":
        steps = args.steps or next(s for a, _, s, *_ in MATRIX if a == args.algo)
        seeds = tuple(int(s) for s in args.seeds.split(","))
        jobs = [(fw, args.algo, env_id, seed, steps)
                for fw, env_id, seed in todo(args.algo, args.envs.split(","), steps,
                                             {fw: seeds for fw in args.frameworks.split(",")})]
    else:
        jobs = [(fw, algo, env_id, seed, steps) for algo, envs, steps, a_seeds, s_seeds in MATRIX
                for fw, env_id, seed in todo(algo, envs, steps, {"aquaml": a_seeds, "sb3": s_seeds})]
    run_all(jobs, cores)


if __name__ == "__main__":
    main()
