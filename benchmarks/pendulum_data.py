"""Pendulum-v1 data shared by the imitation and offline benchmarks, made once into benchmarks/.data/:
a SAC expert (20k steps, seed 0), ``R_expert`` and ``R_random`` over 20 held-out episodes, 10
deterministic expert episodes, and "medium-replay" (``recipes.stopped_replay``: a slow
SAC learner stopped at a third of the expert's normalised score), as in the tests."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aquaml import RLTaskStarter, SACParameters
from aquaml.apps.collect import collect
from aquaml.data import save_data
from aquaml.starter import load_policy
from recipes import random_returns, stopped_replay

DATA = Path(__file__).resolve().parent / ".data"


@dataclass
class PendulumData:
    expert_demos: Path  #: 10 deterministic expert episodes
    medium_replay: Path
    expert_return: float
    random_return: float

    def normalized(self, returns) -> float:
        return (float(np.mean(returns)) - self.random_return) / (self.expert_return - self.random_return)


def pendulum_data(scratch: Path) -> PendulumData:
    DATA.mkdir(exist_ok=True)
    info = DATA / "pendulum.json"
    demos, replay = DATA / "pendulum_expert10.npz", DATA / "pendulum_medium_replay.npz"
    if info.exists() and demos.exists() and replay.exists():
        returns = json.loads(info.read_text())
        return PendulumData(demos, replay, returns["expert"], returns["random"])
    print("making the Pendulum data (SAC expert, medium-replay run) ...", flush=True)
    params = SACParameters(n_epochs=400, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
                           hidden_sizes=(64, 64), display_interval=400, calculate_episodes=10, seed=0)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=scratch, progress=False)
    run_dir = starter.run().run_dir
    starter.close()
    policy = load_policy(run_dir)
    evaluator = policy.evaluator()
    expert = float(np.mean(evaluator(policy.params, 20, first_episode=10**6)[0]))
    evaluator.close()
    random = float(np.mean(random_returns("Pendulum-v1", 20)))
    collect(run_dir, 10, demos)
    slow = SACParameters(n_epochs=2000, update_interval=50, update_times=5, batch_size=256, learning_rate=3e-4,
                         hidden_sizes=(64, 64), display_interval=10, calculate_episodes=10, seed=1,
                         store_model_times=10**6)
    dataset, reached, steps = stopped_replay("Pendulum-v1", slow, 1 / 3, expert, random, scratch)
    print(f"medium-replay: {dataset.n_episodes} episodes, {steps} steps, stopped at normalised {reached:.2f}")
    save_data(replay, dataset)
    info.write_text(json.dumps({"expert": expert, "random": random}))
    return PendulumData(demos, replay, expert, random)
