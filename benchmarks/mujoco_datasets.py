"""D4RL's three kinds of data, made by AquaML from its own runs on a MuJoCo task (issue 21, item 3):

* ``expert``: episodes of a trained SAC policy (a run of ``benchmarks/mujoco_vs_sb3.py``, or one
  trained here with the task's preset);
* ``medium``: episodes of a SAC run stopped once its evaluation reaches a third of the expert's
  normalised score (``recipes.stopped_replay``);
* ``medium-replay``: that stopped run's replay buffer, every transition up to the medium policy.

Each is written as a Minari dataset (``minari:aquaml/<task>/<kind>-v0``, as D4RL's successors are
named) and as ``.npz`` beside ``info.json``, which holds ``R_expert`` and ``R_random`` (20 held-out
episodes each) that normalise scores: ``(R - R_random) / (R_expert - R_random)``. Resumable: the
expert's and the stopped run's folders stay under ``--out``; what exists is not made again.

    python benchmarks/mujoco_datasets.py Hopper-v5 [--expert RUN_DIR] [--episodes 100]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from recipes import expert_reference, stopped_replay  # noqa: E402

from aquaml.algorithm.builtin_parameters import SACParameters  # noqa: E402
from aquaml.algorithm.parameters import epochs_for  # noqa: E402
from aquaml.algorithm.presets import find_preset  # noqa: E402
from aquaml.apps.collect import collect  # noqa: E402
from aquaml.data import save_data  # noqa: E402
from aquaml.starter.run_dirs import find_run  # noqa: E402

EXPERT_STEPS = 300_000  #: the expert's length when this script trains it (the matrix's SAC runs' length)


def expert_run(env_id: str, out: Path, given: str | None, steps: int) -> Path:
    """The expert's run folder: given, the matrix's first SAC run on ``env_id``, or trained here."""
    if given:
        return find_run(given)
    matrix = HERE / "runs" / "mujoco" / "aquaml" / "sac" / f"{env_id}_s0"
    if matrix.exists():
        return find_run(matrix)
    folder = out / "expert"
    command = [sys.executable, "-m", "aquaml.cli", "train", "sac", env_id, "--steps", str(steps), "-q"]
    command += ["--resume", str(folder)] if list(folder.glob("*/checkpoints/latest")) else \
        ["--name", "expert", "--run-root", str(out)]
    subprocess.run(command, check=True, cwd=HERE.parent)
    return find_run(folder)


def medium_params(env_id: str, steps: int) -> SACParameters:
    """The stopped learner: the task's SAC preset, another seed, at most ``steps`` env steps,
    evaluations every 5,000 steps (or a twentieth of ``steps``, if less)."""
    preset = find_preset("sac", env_id)
    params = SACParameters().with_strings(preset.values if preset else {})
    return params.replace(n_epochs=epochs_for(params, steps), seed=1, eval_every=min(5_000, max(1, steps // 20)),
                          calculate_episodes=10, store_model_times=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env", help="a Gymnasium MuJoCo id, e.g. Hopper-v5")
    parser.add_argument("--expert", help="the expert's run folder (default: the matrix's first SAC run, or train one)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes of the expert and the medium policy")
    parser.add_argument("--out", type=Path, help="default benchmarks/.data/<env>")
    parser.add_argument("--expert-steps", type=int, default=EXPERT_STEPS,
                        help="env steps of an expert trained here, and the most the stopped run may take")
    args = parser.parse_args()
    out = (args.out or HERE / ".data" / args.env).resolve()
    out.mkdir(parents=True, exist_ok=True)
    info_file, task = out / "info.json", args.env.split("-v")[0].lower()
    info = json.loads(info_file.read_text()) if info_file.exists() else {"env": args.env}

    expert = expert_run(args.env, out, args.expert, args.expert_steps)
    if "expert_return" not in info:
        reference = expert_reference(expert, args.env)
        info.update(expert_run=str(expert), expert_return=reference.expert_return,
                    random_return=reference.random_return)
        info_file.write_text(json.dumps(info, indent=1))
    print(f"{args.env}: expert {info['expert_return']:.1f}, random {info['random_return']:.1f} ({expert})")

    def write(kind: str, dataset) -> None:
        save_data(out / f"{kind}.npz", dataset)
        save_data(f"minari:aquaml/{task}/{kind}-v0", dataset)
        info.setdefault("datasets", {})[kind] = {"npz": str(out / f"{kind}.npz"), "minari": f"aquaml/{task}/{kind}-v0",
                                                 "episodes": dataset.n_episodes, "steps": dataset.n_steps,
                                                 "return_mean": float(dataset.returns().mean())}
        info_file.write_text(json.dumps(info, indent=1))
        print(f"{kind}: {dataset.n_episodes} episodes, {dataset.n_steps} steps, mean return "
              f"{dataset.returns().mean():.1f}")

    kinds = info.get("datasets", {})
    if "expert" not in kinds:
        write("expert", collect(expert, args.episodes))
    if "medium" not in kinds or "medium-replay" not in kinds:
        root = out / "medium_run"
        shutil.rmtree(root, ignore_errors=True)  # the stopped run is made again whole: its buffer is the data
        replay, reached, steps = stopped_replay(args.env, medium_params(args.env, args.expert_steps), 1 / 3,
                                                info["expert_return"], info["random_return"], root)
        info.update(medium_reached=reached, medium_steps=steps)
        write("medium-replay", replay)
        write("medium", collect(find_run(next(root.iterdir())), args.episodes))


if __name__ == "__main__":
    main()
