"""Latency of one action from one observation: a SAC policy (Pendulum-v1, a 64x64 ReLU MLP) through
``aquaml.load_policy(...).predict`` (the jitted ``act``), ``aquaml.deploy.OnnxPolicy.predict`` (the
``aquaml export`` file in onnxruntime), a bare onnxruntime ``session.run`` on that file, and, as the
reference, Stable-Baselines3's actor of the same size exported as its documentation shows
(``torch.onnx.export`` of ``policy.actor(obs, deterministic=True)``) in a bare ``session.run``.

Each timer calls ``--calls`` times after a warm-up and reports the median and the 99th percentile
in microseconds; onnxruntime runs with one thread. The target: OnnxPolicy's median at most 50 us.
SB3's file gives actions in [-1, 1] (its users rescale them); AquaML's file gives the environment's
units, with the rescaling inside the graph.

Run from the repository root:  python benchmarks/policy_latency.py  (--run-dir RUN uses a trained run;
--hidden 64 --calls 5000 --no-sb3)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

TARGET_US = 50.0


def latency(fn, calls: int, warmup: int = 200) -> tuple[float, float]:
    """Median and 99th percentile of ``fn()`` in microseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    times.sort()
    return statistics.median(times) / 1e3, times[int(0.99 * (len(times) - 1))] / 1e3


def train_tiny_run(root: str, hidden: int) -> Path:
    """A SAC run on Pendulum-v1 of ``hidden x hidden`` (a few hundred steps: latency needs no skill)."""
    from aquaml import RLTaskStarter
    from aquaml.algorithm import SAC, SACParameters

    params = SACParameters(n_epochs=4, update_interval=50, update_times=5, batch_size=32,
                           hidden_sizes=(hidden, hidden), display_interval=4, calculate_episodes=1, seed=0)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, name="latency", progress=False,
                            run_root=root)
    run_dir = starter.run().run_dir
    starter.close()
    return run_dir


def sb3_onnx(path: Path, hidden: int) -> Path:
    """SB3's SAC actor of the same size, exported as the SB3 documentation shows."""
    import torch
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [hidden, hidden]}, device="cpu", seed=0)

    class OnnxableActor(torch.nn.Module):
        def __init__(self, actor):
            super().__init__()
            self.actor = actor

        def forward(self, observation):
            return self.actor(observation, deterministic=True)

    torch.onnx.export(OnnxableActor(model.policy.actor), (torch.zeros(1, 3),), str(path), opset_version=17,
                      input_names=["input"], output_names=["action"], dynamo=False)
    return path


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", help="a trained run (default: a tiny SAC run on Pendulum-v1)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--no-sb3", action="store_true")
    args = parser.parse_args()

    import aquaml
    from aquaml.apps.export import export_policy
    from aquaml.deploy import OnnxPolicy

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or train_tiny_run(tmp, args.hidden)
        policy = aquaml.load_policy(run_dir)
        obs = np.asarray(np.random.default_rng(0).normal(size=policy.observation_shapes["obs"]), np.float32)
        summary = export_policy(policy, Path(tmp) / "policy.onnx")
        onnx_policy = OnnxPolicy(summary.path)
        raw = session(summary.path)
        feed = {"obs": obs.reshape(1, -1)}
        rows.append(("aquaml load_policy().predict (jitted act)", *latency(lambda: policy.predict(obs), args.calls)))
        rows.append(("aquaml OnnxPolicy.predict", *latency(lambda: onnx_policy.predict(obs), args.calls)))
        rows.append(("aquaml .onnx, bare session.run", *latency(lambda: raw.run(None, feed), args.calls)))
        if not args.no_sb3:
            try:
                sb3 = session(sb3_onnx(Path(tmp) / "sb3.onnx", args.hidden))
            except ImportError as e:
                print(f"SB3 reference skipped: {e}")
            else:
                sb3_feed = {"input": obs.reshape(1, -1)}
                rows.append(("SB3 actor .onnx, bare session.run", *latency(lambda: sb3.run(None, sb3_feed),
                                                                           args.calls)))
        import onnxruntime

        print(f"one action from one observation, {args.hidden}x{args.hidden} MLP, {args.calls} calls; "
              f"onnxruntime {onnxruntime.__version__}, 1 thread; {summary.max_difference:.1e} max |onnx - predict|")
        print(f"{'':44} {'median_us':>10} {'p99_us':>10}")
        for name, median, p99 in rows:
            print(f"{name:44} {median:10.1f} {p99:10.1f}")
        median = rows[1][1]
        print(f"target: OnnxPolicy median <= {TARGET_US:.0f} us: {'met' if median <= TARGET_US else 'MISSED'} "
              f"({median:.1f} us)")


if __name__ == "__main__":
    main()
