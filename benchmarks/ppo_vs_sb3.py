"""AquaML PPO and recurrent PPO against Stable-Baselines3 / sb3-contrib, and AquaML recurrent SAC.

Parts (one CPU thread each, the process pinned to one core as in sac_vs_sb3.py):

- ppo: PPO on CartPole-v1, the same settings in both frameworks: 8 envs x 128 steps per
  rollout, batch 256, 10 epochs, lr 3e-4, gamma 0.99, GAE lambda 0.95, clip 0.2, no
  entropy bonus, max grad norm 0.5, separate 64x64 ReLU actor and critic, observation
  normalisation (SB3: VecNormalize without reward normalisation). Prints the training wall
  time, env steps/s, the first env step and training time at which the mean deterministic
  return over 10 episodes (evaluated every 10 rollouts) reaches 475, the final return, and
  SB3's wall time over AquaML's (target >= 3x at the same env steps) per seed and on average.
- rppo: recurrent PPO on CartPoleNoVel-v1 (velocities removed): AquaML's
  examples/recurrent_ppo_cartpole_novel.py against sb3-contrib RecurrentPPO (MlpLstmPolicy,
  LSTM 64 with a critic LSTM, 64-unit ReLU heads, the same PPO settings and VecNormalize).
  Prints the returns at equal env steps and the wall times.
- rsac: AquaML's recurrent SAC on position-only Pendulum (examples/recurrent_sac_pendulum_pos.py);
  final return against the target >= -220. SB3 has no recurrent SAC, so AquaML runs alone.

Times are training only for both frameworks: model construction, the periodic evaluations
(and AquaML's log writes and checkpoints) are excluded; JAX compilation is included.

Run from the repository root:  python benchmarks/ppo_vs_sb3.py
  (options: --parts ppo,rppo,rsac --seeds 0,1,2 --steps 100000 --rsac-steps 50000 --no-pin)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
# Sets XLA_FLAGS (one XLA thread); must come before anything imports jax.
from sac_vs_sb3 import pin_to_one_core, print_header, verdict, version  # noqa: E402

import argparse  # noqa: E402
import csv  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable, NamedTuple  # noqa: E402

import torch  # noqa: E402
from sb3_contrib import RecurrentPPO  # noqa: E402
from stable_baselines3 import PPO as SB3PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization  # noqa: E402

from aquaml.algorithm import PPO, PPOParameters  # noqa: E402  (importing aquaml registers CartPoleNoVel-v1)
from aquaml.starter import RLTaskStarter, RunSummary  # noqa: E402
from examples.recurrent_ppo_cartpole_novel import main as rppo_example  # noqa: E402
from examples.recurrent_sac_pendulum_pos import main as rsac_example  # noqa: E402

N_ENVS, N_STEPS = 8, 128
ROLLOUT = N_ENVS * N_STEPS  # env steps per rollout
PPO_SETTINGS: dict[str, Any] = dict(n_steps=N_STEPS, batch_size=256, n_epochs=10, learning_rate=3e-4, gamma=0.99,
                                    gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, max_grad_norm=0.5)
EVAL_EVERY, EVAL_EPISODES = 10, 10  # rollouts between evaluations; deterministic episodes per evaluation
SEQUENCE_LENGTH = 16  # recurrent examples: training windows
ENV_IDS = {"ppo": "CartPole-v1", "rppo": "CartPoleNoVel-v1"}
THRESHOLDS = {"ppo": 475.0, "rppo": 475.0, "rsac": -220.0}
SPEEDUP_TARGET = 3.0  # ppo: SB3 wall time / AquaML wall time
PARTS = ("ppo", "rppo", "rsac")


class EvalPoint(NamedTuple):
    env_steps: int
    mean_return: float
    train_s: float  # training time up to this evaluation, evaluations excluded


@dataclass
class Run:
    framework: str
    env_steps: int
    train_s: float
    history: list[EvalPoint]

    @property
    def sps(self) -> float:
        return self.env_steps / self.train_s

    @property
    def final_return(self) -> float:
        return self.history[-1].mean_return


def first_at(history: list[EvalPoint], threshold: float) -> EvalPoint | None:
    """The first evaluation whose mean return reaches ``threshold``."""
    return next((p for p in history if p.mean_return >= threshold), None)


# -- AquaML -------------------------------------------------------------------------------
def run_aquaml(train: Callable[[str], RunSummary]) -> Run:
    """Runs ``train(run_root)`` and reads its evaluations and training times from progress.csv.

    ``train_time_s`` counts collecting and learning only (evaluation, logging and
    checkpoints excluded; compilation included), as SB3's time below does.
    """
    with tempfile.TemporaryDirectory() as run_root:
        summary = train(run_root)
        with open(summary.run_dir / "progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    history = [EvalPoint(int(r["env_steps"]), float(r["eval_return_mean"]), float(r["train_time_s"])) for r in rows]
    return Run("AquaML", summary.env_steps, summary.train_time_s, history)


def train_aquaml_ppo(seed: int, steps: int, run_root: str) -> RunSummary:
    s = PPO_SETTINGS
    params = PPOParameters(
        n_epochs=steps // ROLLOUT, n_envs=N_ENVS, rollout_length=N_STEPS, batch_size=s["batch_size"],
        n_update_epochs=s["n_epochs"], learning_rate=s["learning_rate"], discount=s["gamma"],
        gae_lambda=s["gae_lambda"], clip_range=s["clip_range"], ent_coef=s["ent_coef"],
        max_grad_norm=s["max_grad_norm"], hidden_sizes=(64, 64), normalize_obs=True,
        display_interval=EVAL_EVERY, calculate_episodes=EVAL_EPISODES, seed=seed)
    return RLTaskStarter(ENV_IDS["ppo"], None, PPO, params, run_root=run_root, progress=False).run()


AQUAML_TRAIN: dict[str, Callable[[int, int, str], RunSummary]] = {
    "ppo": train_aquaml_ppo,
    "rppo": lambda seed, steps, root: rppo_example(seed, steps, SEQUENCE_LENGTH, run_root=root),
    "rsac": lambda seed, steps, root: rsac_example(seed, steps, SEQUENCE_LENGTH, run_root=root),
}


# -- Stable-Baselines3 --------------------------------------------------------------------
class TimedEval(BaseCallback):
    """Evaluates like AquaML's display: after every ``EVAL_EVERY`` trained rollouts and at the end.

    ``on_rollout_start`` comes after the previous rollout's training (``on_rollout_end`` comes
    before it). The evaluation env shares the training env's normalisation statistics and is
    reseeded each time, so every evaluation plays the same episodes.
    """

    def __init__(self, eval_env: VecNormalize, eval_seed: int) -> None:
        super().__init__()
        self.eval_env, self.eval_seed = eval_env, eval_seed
        self.history: list[EvalPoint] = []
        self.trained_rollouts = 0
        self.eval_s = self.train_s = self.start = 0.0

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_rollout_start(self) -> None:
        if self.trained_rollouts and self.trained_rollouts % EVAL_EVERY == 0:
            self._evaluate()
        self.trained_rollouts += 1

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1].env_steps != self.num_timesteps:
            self._evaluate()
        self.train_s = self.history[-1].train_s

    def _evaluate(self) -> None:
        start = time.perf_counter()
        sync_envs_normalization(self.training_env, self.eval_env)
        self.eval_env.seed(self.eval_seed)
        mean_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES,
                                         deterministic=True)
        self.history.append(EvalPoint(self.num_timesteps, float(mean_return), start - self.start - self.eval_s))
        self.eval_s += time.perf_counter() - start


def run_sb3(part: str, seed: int, steps: int) -> Run:
    env_id = ENV_IDS[part]
    env = VecNormalize(make_vec_env(env_id, n_envs=N_ENVS, seed=seed), norm_obs=True, norm_reward=False)
    eval_env = VecNormalize(make_vec_env(env_id, n_envs=1), training=False, norm_obs=True, norm_reward=False)
    common = dict(PPO_SETTINGS, seed=seed, device="cpu", verbose=0)
    if part == "ppo":
        model = SB3PPO("MlpPolicy", env, policy_kwargs=dict(
            net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.ReLU), **common)
    else:
        model = RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(
            lstm_hidden_size=64, enable_critic_lstm=True, net_arch=dict(pi=[64], vf=[64]),
            activation_fn=torch.nn.ReLU), **common)
    callback = TimedEval(eval_env, eval_seed=seed + 1000)
    model.learn(total_timesteps=steps, callback=callback)
    return Run("SB3", model.num_timesteps, callback.train_s, callback.history)


# -- reporting ----------------------------------------------------------------------------
ROW = "{:>4}  {:<6} {:>8} {:>9} {:>9} {:>10} {:>9} {:>9}"


def print_table_header(part: str) -> None:
    threshold = f"{THRESHOLDS[part]:g}"
    print(ROW.format("seed", "fw", "steps", "train_s", "steps/s", f"step@{threshold}", f"s@{threshold}", "final"))


def print_row(part: str, seed: int, run: Run) -> None:
    hit = first_at(run.history, THRESHOLDS[part])
    print(ROW.format(seed, run.framework, run.env_steps, f"{run.train_s:.2f}", f"{run.sps:.1f}",
                     hit.env_steps if hit else "-", f"{hit.train_s:.2f}" if hit else "-",
                     f"{run.final_return:.1f}"))


def run_part(part: str, seeds: list[int], steps: int) -> None:
    threshold = THRESHOLDS[part]
    titles = {
        "ppo": f"PPO on {ENV_IDS['ppo']}: AquaML vs SB3 PPO",
        "rppo": f"recurrent PPO on {ENV_IDS['rppo']}: AquaML (sequence length {SEQUENCE_LENGTH}) "
                "vs sb3-contrib RecurrentPPO",
        "rsac": f"recurrent SAC on position-only Pendulum-v1 (sequence length {SEQUENCE_LENGTH}); "
                "SB3 and sb3-contrib have no recurrent SAC, so AquaML runs alone",
    }
    print(f"== {part}: {titles[part]}, {steps:,} env steps per run ==")
    print_table_header(part)
    ratios = []
    cold = []  # per run: did it compile from scratch (first AquaML run of this invocation's shapes)?
    for seed in seeds:
        aquaml = run_aquaml(functools.partial(AQUAML_TRAIN[part], seed, steps))
        print_row(part, seed, aquaml)
        if part == "rsac":
            print(f"{'':12}final return {aquaml.final_return:.1f}   target >= {threshold:g} within {steps:,} "
                  f"steps: {verdict(aquaml.final_return >= threshold)}")
            continue
        sb3 = run_sb3(part, seed, steps)
        print_row(part, seed, sb3)
        ratios.append(sb3.train_s / aquaml.train_s)
        cold.append(len(cold) == 0)
        check = (f"   target >= {SPEEDUP_TARGET:g}x: {verdict(ratios[-1] >= SPEEDUP_TARGET)}" if part == "ppo"
                 else f"; returns at {aquaml.env_steps:,} steps: AquaML {aquaml.final_return:.1f}, "
                      f"SB3 {sb3.final_return:.1f}")
        cache = "cold compilation cache" if cold[-1] else "warm compilation cache"
        print(f"{'':12}SB3/AquaML wall time: {ratios[-1]:.2f}x ({cache}){check}")
    if ratios:
        mean = statistics.mean(ratios)
        check = f"   target >= {SPEEDUP_TARGET:g}x: {verdict(mean >= SPEEDUP_TARGET)}" if part == "ppo" else ""
        print(f"mean SB3/AquaML wall time over seeds {','.join(map(str, seeds))}: {mean:.2f}x{check}")
        warm = [r for r, c in zip(ratios, cold) if not c]
        if warm:
            print(f"  first run (cold cache): {ratios[0]:.2f}x; later runs (warm cache): mean {statistics.mean(warm):.2f}x")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--steps", type=int, default=100_000,
                        help=f"ppo and rppo env steps, rounded down to whole rollouts of {ROLLOUT}")
    parser.add_argument("--rsac-steps", type=int, default=50_000, help="rsac env steps")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; use {', '.join(PARTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    ppo_steps = args.steps // ROLLOUT * ROLLOUT
    if ppo_steps == 0:
        parser.error(f"--steps must be at least one rollout ({ROLLOUT} env steps)")

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    print_header(None if args.no_pin else pin_to_one_core())
    print(f"sb3-contrib {version('sb3-contrib')}")
    print(f"train_s: training wall time, for both frameworks without model construction, periodic evaluations "
          f"({EVAL_EPISODES} deterministic episodes every {EVAL_EVERY} rollouts and at the end) and AquaML's "
          "log writes and checkpoints; JAX compilation included. step@/s@: first evaluation at the threshold.\n")
    for part in parts:
        run_part(part, seeds, args.rsac_steps if part == "rsac" else ppo_steps)


if __name__ == "__main__":
    main()
