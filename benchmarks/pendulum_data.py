"""Pendulum-v1 data shared by the imitation and offline benchmarks, made once into benchmarks/.data/:
a SAC expert (20k steps, seed 0), ``R_expert`` and ``R_random`` over 20 held-out episodes, 10
deterministic expert episodes, and "medium-replay" (``recipes.stopped_replay``: a slow
SAC learner stopped at a third of the expert's normalised score), as in the tests."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


from aquaml.apps.collect import collect
from aquaml.data import save_data
from recipes import Reference, expert_reference, stopped_replay
from learning_runs import sac_pendulum, slow_sac_pendulum, train

DATA = Path(__file__).resolve().parent / ".data"


@dataclass
class PendulumData(Reference):
    expert_demos: Path  #: 10 deterministic expert episodes
    medium_replay: Path


def pendulum_data(scratch: Path) -> PendulumData:
    DATA.mkdir(exist_ok=True)
    info = DATA / "pendulum.json"
    demos, replay = DATA / "pendulum_expert10.npz", DATA / "pendulum_medium_replay.npz"
    if info.exists() and demos.exists() and replay.exists():
        returns = json.loads(info.read_text())
        return PendulumData(returns["expert"], returns["random"], demos, replay)
    print("making the Pendulum data (SAC expert, medium-replay run) ...", flush=True)
    run_dir = train(sac_pendulum(0, 20_000, evals=1), scratch).run_dir  # the tests' expert (tests/conftest.py)
    reference = expert_reference(run_dir, "Pendulum-v1")
    expert, random = reference.expert_return, reference.random_return
    collect(run_dir, 10, demos)
    dataset, reached, steps = stopped_replay("Pendulum-v1", slow_sac_pendulum(), 1 / 3, expert, random, scratch)
    print(f"medium-replay: {dataset.n_episodes} episodes, {steps} steps, stopped at normalised {reached:.2f}")
    save_data(replay, dataset)
    info.write_text(json.dumps({"expert": expert, "random": random}))
    return PendulumData(expert, random, demos, replay)
