"""AquaML SAC against Stable-Baselines3 SAC on Pendulum-v1, one CPU thread each.

For each hidden size (64x64, 256x256) and mode ("step": one gradient step after every
env step; "burst": 50 env steps, then 50 gradient steps) both frameworks train with the
same settings (learning rate 1e-3, batch 256, buffer 1e6, gamma 0.99, tau 0.005,
automatic entropy starting at 1.0, the same env steps, gradient steps and random
warm-up). The script prints, per framework: the setup time (building models and
optimisers), the training wall time with and without compilation (setup and the final
evaluation are not part of it), env steps/s, gradient steps, the deterministic return
over 10 episodes, and AquaML's steps/s over SB3's.

For 256x256 in step mode it also counts the FLOPs of the matrix products of one SAC
gradient step, measures the FLOP/s one thread reaches on those shapes with XLA, and
compares the matmul-only time per update with AquaML's measured time per update.

Whole-run mode (``--whole-run``): the time a user waits, from building the trainer to the
end of training, final evaluation (10 episodes) and the saved model included, 20k env steps
by default. AquaML runs twice per configuration, first with an empty compilation cache
("cold", a configuration's first run) and then with the cache it filled ("warm", every
later run); SB3 once (PyTorch compiles nothing).

Run from the repository root:  python benchmarks/sac_vs_sb3.py
  (options: --sizes 64,256 --modes step,burst --steps 10000 --seed 0 --skip-sb3 --no-pin)
  whole runs:                   python benchmarks/sac_vs_sb3.py --whole-run --steps 20000
"""
from __future__ import annotations

import os

# One thread for XLA; must be set before jax (or aquaml, which imports it) is imported.
# The Eigen flag and the core pinning in main() hold XLA to one thread.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
os.environ["KERAS_BACKEND"] = "jax"
# An empty JAX compilation cache for this invocation: its first AquaML run compiles everything
# ("cold"), later runs with the same shapes load the compiled programs ("warm"), as a user's
# second run would. The cache is removed at exit.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile as _tempfile  # noqa: E402

if "AQUAML_JAX_CACHE" not in os.environ:
    os.environ["AQUAML_JAX_CACHE"] = _tempfile.mkdtemp(prefix="aquaml-bench-jax-")
    atexit.register(shutil.rmtree, os.environ["AQUAML_JAX_CACHE"], True)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import metadata  # noqa: E402
from typing import Any, Callable  # noqa: E402

import jax  # noqa: E402

from aquaml.algorithm.sac import SACParameters  # noqa: E402
from aquaml.starter import RLTaskStarter  # noqa: E402

ENV_ID = "Pendulum-v1"
OBS_DIM, ACT_DIM = 3, 1
LR, BATCH, BUFFER, GAMMA, TAU = 1e-3, 256, 1_000_000, 0.99, 0.005
ALPHA_INIT = 1.0  # SB3's ent_coef="auto" starts at 1.0 and learns it with the main learning rate
EVAL_EPISODES = 10
MODES = {"step": 1, "burst": 50}  # env steps per epoch == gradient steps per epoch
SPEEDUP_TARGETS = {(64, "step"): 4.0, (64, "burst"): 5.0, (256, "step"): 1.5}
MATMUL_TARGET = 1.3  # AquaML time per update at most this many times the matmul-only time
RETURN_TOLERANCE = 150.0  # informal: returns this close count as "equal"


@dataclass
class Result:
    framework: str
    setup_s: float  # building models, optimisers and environment; not in wall_s
    wall_s: float  # training, compilation included
    compile_s: float  # estimated compilation inside wall_s
    env_steps: int
    grad_steps: int
    eval_return: float

    @property
    def wall_excl_s(self) -> float:
        return self.wall_s - self.compile_s

    @property
    def sps(self) -> float:
        return self.env_steps / self.wall_s

    @property
    def sps_excl(self) -> float:
        return self.env_steps / self.wall_excl_s

    @property
    def per_update_s(self) -> float:
        """Training time without compilation per gradient step (its env steps and warm-up included)."""
        return self.wall_excl_s / self.grad_steps


class CallTimer:
    """Wraps a (jitted) function and records each call's duration, waiting for JAX results."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.durations: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = jax.block_until_ready(self.fn(*args, **kwargs))
        self.durations.append(time.perf_counter() - start)
        return out

    def compile_estimate(self) -> float:
        """First call minus a steady-state (median) call; all of it if there is only one call."""
        if not self.durations:
            return 0.0
        steady = statistics.median(self.durations[1:]) if len(self.durations) > 1 else 0.0
        return max(0.0, self.durations[0] - steady)


def run_aquaml(hidden: int, mode: str, steps: int, warmup: int, seed: int) -> Result:
    params = sac_parameters(hidden, mode, steps, warmup, seed)
    with tempfile.TemporaryDirectory() as run_root:
        start = time.perf_counter()
        starter = RLTaskStarter(ENV_ID, algo_hyperparameter=params, run_root=run_root, progress=False)
        setup_s = time.perf_counter() - start
        # The collector keeps its own reference to algo.act, so that is the one to wrap.
        timers = [CallTimer(starter.algo.update), CallTimer(starter.collector.act)]
        starter.algo.update, starter.collector.act = timers
        summary = starter.run()
    # summary.wall_time_s stops before the final evaluation and checkpoint.
    return Result("AquaML", setup_s, summary.wall_time_s, sum(t.compile_estimate() for t in timers),
                  summary.env_steps, summary.grad_steps, summary.final_eval_return)


def sac_parameters(hidden: int, mode: str, steps: int, warmup: int, seed: int) -> SACParameters:
    every = MODES[mode]
    n_epochs = steps // every
    return SACParameters(
        n_epochs=n_epochs, update_interval=every, update_times=every, batch_size=BATCH,
        discount=GAMMA, tau=TAU, alpha=ALPHA_INIT, auto_alpha=True, alpha_learning_rate=LR,
        buffer_size=BUFFER, mini_buffer_size=warmup, display_interval=n_epochs,  # evaluate once, at the end
        calculate_episodes=EVAL_EPISODES, seed=seed, hidden_sizes=(hidden, hidden), learning_rate=LR)


def whole_run_aquaml(hidden: int, mode: str, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """Seconds from building the trainer to the end of ``run()`` (evaluation and checkpoint included), and the return."""
    params = sac_parameters(hidden, mode, steps, warmup, seed)
    with tempfile.TemporaryDirectory() as run_root:
        start = time.perf_counter()
        summary = RLTaskStarter(ENV_ID, algo_hyperparameter=params, run_root=run_root, progress=False).run()
        return time.perf_counter() - start, summary.final_eval_return


def whole_run_sb3(hidden: int, mode: str, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """The same for SB3: build, learn, evaluate 10 episodes, save the model."""
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    every = MODES[mode]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model = SAC("MlpPolicy", ENV_ID, learning_rate=LR, buffer_size=BUFFER, learning_starts=max(warmup, BATCH) - 1,
                    batch_size=BATCH, tau=TAU, gamma=GAMMA, train_freq=every, gradient_steps=every,
                    ent_coef=f"auto_{ALPHA_INIT}", target_entropy="auto",
                    policy_kwargs=dict(net_arch=[hidden, hidden]), seed=seed, device="cpu", verbose=0)
        model.learn(total_timesteps=steps)
        eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 1)
        mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
        model.save(os.path.join(folder, "model"))
        return time.perf_counter() - start, float(mean_return)


WHOLE_RUN_TARGETS = {(64, "step"): 4.0, (64, "burst"): 6.0}


def main_whole_run(sizes: list[int], modes: list[str], steps: int, warmup: int, seed: int, skip_sb3: bool) -> None:
    print(f"Whole runs: {steps} env steps, build + train + final evaluation ({EVAL_EPISODES} episodes) + save\n")
    print("{:>4} {:>5}  {:<13} {:>8} {:>9} {:>8}".format("size", "mode", "run", "wall_s", "steps/s", "return"))
    for hidden in sizes:
        for mode in modes:
            run_args = (hidden, mode, steps, warmup, seed)
            cold = whole_run_aquaml(*run_args)
            warm = whole_run_aquaml(*run_args)
            rows = [("AquaML cold", cold), ("AquaML warm", warm)]
            sb3 = None if skip_sb3 else whole_run_sb3(*run_args)
            if sb3 is not None:
                rows.append(("SB3", sb3))
            for label, (wall, ret) in rows:
                print(f"{hidden:>4} {mode:>5}  {label:<13} {wall:>8.2f} {steps / wall:>9.1f} {ret:>8.1f}")
            if sb3 is not None:
                target = WHOLE_RUN_TARGETS.get((hidden, mode))
                ratios = f"SB3/AquaML wall time: {sb3[0] / cold[0]:.2f}x cold, {sb3[0] / warm[0]:.2f}x warm"
                check = f"   target >= {target}x: cold {verdict(sb3[0] / cold[0] >= target)}, " \
                        f"warm {verdict(sb3[0] / warm[0] >= target)}" if target else ""
                print(f"{'':12}{ratios}{check}")


def run_sb3(hidden: int, mode: str, steps: int, warmup: int, seed: int) -> Result:
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    every = MODES[mode]
    start = time.perf_counter()
    # SB3 trains once num_timesteps > learning_starts, AquaML once the buffer holds
    # max(warmup, batch) transitions: "- 1" gives both the same gradient steps (SB3 then
    # takes one random warm-up action fewer).
    model = SAC("MlpPolicy", ENV_ID, learning_rate=LR, buffer_size=BUFFER,
                learning_starts=max(warmup, BATCH) - 1, batch_size=BATCH, tau=TAU, gamma=GAMMA,
                train_freq=every, gradient_steps=every, ent_coef=f"auto_{ALPHA_INIT}",
                target_entropy="auto", policy_kwargs=dict(net_arch=[hidden, hidden]), seed=seed,
                device="cpu", verbose=0)
    setup_s = time.perf_counter() - start
    model.learn(total_timesteps=steps)
    wall_s = time.perf_counter() - start - setup_s
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 1)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
    # PyTorch runs eagerly: nothing to compile.
    return Result("SB3", setup_s, wall_s, 0.0, model.num_timesteps, model._n_updates, float(mean_return))


# -- FLOP analysis ------------------------------------------------------------------------
def mlp_layers(in_dim: int, hidden: int, head_dims: tuple[int, ...]) -> list[tuple[int, int]]:
    """(in, out) of each dense layer: two hidden layers, then one layer per output head."""
    return [(in_dim, hidden), (hidden, hidden)] + [(hidden, d) for d in head_dims]


def update_matmuls(hidden: int, batch: int = BATCH) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product in one SAC gradient step.

    Assumptions: only matrix products are counted (activations, tanh-Gaussian, Adam and
    Polyak updates are elementwise and cheap next to them). A dense layer's forward is
    x(B,in) @ W(in,out); its backward is dx = dy @ W.T and dW = x.T @ dy, each as large
    as the forward, so 2x forward. The first layer's dx is counted although XLA may skip
    it (the input is data; at most 2*B*4*hidden FLOPs each). Actor: obs 3 -> h -> h ->
    mean 1 and log-std 1 heads. Critic: obs+action 4 -> h -> h -> 1.
    """
    actor = mlp_layers(OBS_DIM, hidden, (ACT_DIM, ACT_DIM))
    critic = mlp_layers(OBS_DIM + ACT_DIM, hidden, (1,))
    passes = [  # (layers, how many networks, which products)
        (actor, 1, "forward"),  # next action on next obs
        (critic, 2, "forward"),  # two target critics on next obs
        (critic, 2, "train"),  # critic loss: forward + backward of both critics
        (actor, 1, "train"),  # actor loss: forward + backward of the actor ...
        (critic, 2, "input_grad"),  # ... through both critics (gradient w.r.t. their input only)
    ]
    shapes = []
    for layers, count, kind in passes:
        for n_in, n_out in layers:
            products = [(batch, n_in, n_out)]
            if kind != "forward":
                products.append((batch, n_out, n_in))  # dx = dy @ W.T
            if kind == "train":
                products.append((n_in, batch, n_out))  # dW = x.T @ dy
            shapes += products * count
    return shapes


def matmul_flops(shapes: list[tuple[int, int, int]]) -> int:
    return sum(2 * m * k * n for m, k, n in shapes)


def measure_matmul_seconds(shapes: list[tuple[int, int, int]], repeats: int = 30) -> float:
    """Median time of one jitted call computing all ``shapes`` products (one thread)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(shapes))
    operands = [(jax.random.normal(keys[2 * i], (m, k)), jax.random.normal(keys[2 * i + 1], (k, n)))
                for i, (m, k, n) in enumerate(shapes)]
    products = jax.jit(lambda ops: [a @ b for a, b in ops])
    jax.block_until_ready(products(operands))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(products(operands))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_flop_analysis(hidden: int, aquaml: Result, sb3: Result | None) -> None:
    shapes = update_matmuls(hidden)
    flops = matmul_flops(shapes)
    matmul_s = measure_matmul_seconds(shapes)
    ratio = aquaml.per_update_s / matmul_s
    print(f"\nFLOP analysis, {hidden}x{hidden}, batch {BATCH}, one gradient step ({len(shapes)} matmuls):")
    print(f"  FLOPs per update (matmuls)           {flops / 1e6:10.1f} MFLOP")
    print(f"  measured matmul FLOP/s (1 thread)    {flops / matmul_s / 1e9:10.2f} GFLOP/s")
    print(f"  matmul time per update               {matmul_s * 1e3:10.3f} ms")
    print(f"  AquaML time per update + env step    {aquaml.per_update_s * 1e3:10.3f} ms")
    if sb3 is not None:
        print(f"  SB3 time per update + env step       {sb3.per_update_s * 1e3:10.3f} ms")
    print(f"  AquaML / matmul-only                 {ratio:10.2f}x   target <= {MATMUL_TARGET}x: "
          f"{verdict(ratio <= MATMUL_TARGET)}")


# -- reporting ----------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_header(pinned: set[int] | None) -> None:
    packages = ("jax", "jaxlib", "keras", "optax", "gymnasium", "torch", "stable-baselines3")
    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; pinned to "
          f"{'core ' + ','.join(map(str, sorted(pinned))) if pinned else 'no core (not pinned)'}")
    print(f"python {platform.python_version()}; " + "; ".join(f"{p} {version(p)}" for p in packages))
    print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}\n")


def pin_to_one_core() -> set[int] | None:
    """Pin every thread of this process (and so all threads it starts later) to one core."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = {min(os.sched_getaffinity(0))}
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]:
        try:
            os.sched_setaffinity(int(tid), core)
        except OSError:  # a thread that has ended meanwhile
            pass
    return core


ROW = "{:>4} {:>5}  {:<6} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>6} {:>9}"


def print_rows(hidden: int, mode: str, results: list[Result]) -> None:
    for r in results:
        print(ROW.format(hidden, mode, r.framework, f"{r.setup_s:.2f}", f"{r.wall_s:.2f}", f"{r.compile_s:.2f}",
                         f"{r.wall_excl_s:.2f}", f"{r.sps:.1f}", f"{r.sps_excl:.1f}", r.grad_steps,
                         f"{r.eval_return:.1f}"))


def print_comparison(hidden: int, mode: str, aquaml: Result, sb3: Result) -> None:
    ratio, ratio_incl = aquaml.sps_excl / sb3.sps_excl, aquaml.sps / sb3.sps
    target = SPEEDUP_TARGETS.get((hidden, mode))
    check = f"   target >= {target}x: {verdict(ratio >= target)}" if target else ""
    print(f"{'':12}AquaML/SB3 steps/s: {ratio:.2f}x excluding compilation "
          f"({ratio_incl:.2f}x including){check}")
    gap = abs(aquaml.eval_return - sb3.eval_return)
    print(f"{'':12}returns {aquaml.eval_return:.1f} vs {sb3.eval_return:.1f}: gap {gap:.1f} "
          f"({'within' if gap <= RETURN_TOLERANCE else 'beyond'} {RETURN_TOLERANCE:.0f}, informal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256", help="hidden sizes, comma-separated")
    parser.add_argument("--modes", default="step,burst", help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per run")
    parser.add_argument("--warmup", type=int, default=1000, help="random-action steps before learning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sb3", action="store_true", help="run AquaML only")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--whole-run", action="store_true",
                        help="time whole runs as a user sees them (compilation, evaluation, saving included)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; use {', '.join(MODES)}")
        if args.steps % MODES[mode] or args.steps <= max(args.warmup, BATCH):
            parser.error(f"--steps must be a multiple of {MODES[mode]} and exceed the warm-up")

    print_header(None if args.no_pin else pin_to_one_core())
    if args.whole_run:
        main_whole_run(sizes, modes, args.steps, args.warmup, args.seed, args.skip_sb3)
        return
    print(ROW.format("size", "mode", "fw", "setup_s", "wall_s", "compile", "excl_s", "sps", "sps_excl", "grads", "return"))
    for hidden in sizes:
        for mode in modes:
            run_args = (hidden, mode, args.steps, args.warmup, args.seed)
            aquaml = run_aquaml(*run_args)
            sb3 = None if args.skip_sb3 else run_sb3(*run_args)
            print_rows(hidden, mode, [aquaml] + ([sb3] if sb3 else []))
            if sb3 is not None:
                print_comparison(hidden, mode, aquaml, sb3)
            if hidden == 256 and mode == "step":
                print_flop_analysis(hidden, aquaml, sb3)
                print()


if __name__ == "__main__":
    main()
