"""DAgger (Ross et al. 2011): behaviour cloning on the learner's own states, labelled by an expert.

Round 1 is the expert's (Ross et al.'s ``beta_1 = 1``): its demonstrations, from ``dataset`` or
``expert_episodes`` episodes the expert plays, start the data. Every epoch is a further round:
the learner plays ``steps_per_round`` environment steps with its own (stochastic) policy, the
expert labels each visited state with its deterministic action, the labelled states join the
aggregate, and the actor takes ``update_times`` cloning steps on batches drawn from all of it.
The expert is a run folder (``expert=RUN_DIR``) whose actor reads observations the learner's
environment provides; the learner may read others (an actor on ``'pos'`` taught by an expert
on ``'obs'``).

A recurrent learner (``sequence_length``) clones over windows of consecutive steps of the
aggregate that never cross an episode end (nor the end of a round's stretch of one
environment), each starting from the state the learner carried when it played that step
(zeros in the expert's round), warmed up for ``burn_in`` steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jax
import numpy as np

from aquaml.algorithm.bc import BC, BCParameters
from aquaml.algorithm.parameters import check_positive
from aquaml.data.windows import draw_batches, ends_of, last_steps
from aquaml.tools.checkpoint import load_npz


@dataclass
class DAggerParameters(BCParameters):
    """Behaviour cloning's parameters plus the expert and the rounds (``n_epochs`` learner rounds)."""

    expert: str = ""  #: the expert's run folder (its newest checkpoint labels the states)
    steps_per_round: int = 800  #: env steps the learner plays per round (Pendulum: 4 episodes)
    expert_episodes: int = 4  #: episodes of round 1 when no ``dataset`` is given
    n_epochs: int = 5
    update_times: int = 2000  #: cloning steps after each round

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "steps_per_round", "expert_episodes")

    @property
    def steps_per_env(self) -> int:
        return self.steps_per_round


class DAgger(BC):
    """DAgger with a cloning update (``aquaml train dagger ENV --set expert=RUN_DIR``)."""

    name: ClassVar[str] = "dagger"
    Parameters: ClassVar[type] = DAggerParameters
    kind: ClassVar[str] = "dagger"


class ExpertLabels:
    """The expert's deterministic actions for batches of observations (read-only use of its run)."""

    def __init__(self, run_dir: str) -> None:
        from aquaml.starter.evaluation import load_policy

        if not run_dir:
            raise ValueError("dagger needs an expert: set expert=RUN_DIR (a trained run folder)")
        self.evaluator, self.params, _ = load_policy(run_dir)
        if self.evaluator.state_outputs:
            raise ValueError(f"the expert in {run_dir} is recurrent; dagger labels states with feed-forward experts "
                             "only (a recurrent expert would need its state along the learner's path)")
        self.inputs = self.evaluator.actor_inputs
        self.run_dir = run_dir

    def check(self, available) -> None:
        """``available``: name -> shape of the learner environment's observations."""
        wanted = self.evaluator.driver.shapes  # the expert's own environment
        missing = [k for k in self.inputs if k not in available]
        if missing:
            raise ValueError(f"the expert's actor reads {missing}, which the learner's environment does not provide "
                             f"(it provides {', '.join(sorted(available))})")
        for k in self.inputs:
            if tuple(available[k]) != tuple(wanted[k]):
                raise ValueError(f"the expert's actor reads {k!r} of shape {tuple(wanted[k])}; the learner's "
                                 f"environment gives it shape {tuple(available[k])}")

    def __call__(self, obs) -> np.ndarray:
        n = len(next(iter(obs.values())))
        action, _, _ = self.evaluator.act(self.params, {k: obs[k].reshape(n, *obs[k].shape[1:]) for k in self.inputs},
                                          jax.random.PRNGKey(0), deterministic=True)
        return np.asarray(action["action"])

    def demonstrations(self, agent, episodes: int, seed: int):
        """The expert's episodes in the learner's environment (round 1), with every observation it provides."""
        from aquaml.data import Dataset
        from aquaml.data.collect import COLLECT_FIRST_EPISODE
        from aquaml.starter.evaluation import Evaluator

        player = Evaluator(agent.env_factory, {}, agent.episode_length, self.evaluator.act, self.inputs, seed)
        try:
            _, _, records = player.run(self.params, episodes, COLLECT_FIRST_EPISODE, record=True)
        finally:
            player.close()
        return Dataset.from_episodes(records, {"source": f"expert {self.run_dir}"})

    def close(self) -> None:
        self.evaluator.close()


class DAggerLearner:
    """Aggregates expert-labelled states and draws cloning batches (or windows) from all of them.

    The aggregate is flat, in the order played: each round's steps env by env, with the
    episode flags and ``ends`` marking where a window must stop.
    """

    can_overlap = False

    def __init__(self, algo, fields, params, dataset=None, agent=None) -> None:
        self.algo, self.params = algo, params
        self.expert = ExpertLabels(params.expert)
        self.expert.check({k[len("obs/"):]: shape for k, (shape, _) in fields.items() if k.startswith("obs/")})
        start = dataset if dataset is not None else self.expert.demonstrations(agent, params.expert_episodes,
                                                                               params.seed)
        names = list(algo.norm_shapes())
        data = start.transitions(names)
        keep = (*(f"obs/{n}" for n in names), "action", "terminated", "truncated")
        self.data = {k: data[k] for k in keep}
        self.data["ends"] = ends_of(start.lengths)
        self.states = algo.models["actor"].state_outputs if params.sequence_length else {}
        for name, shape in self.states.items():  # the expert's round carries no learner state: zeros
            self.data[f"obs/{name}"] = np.zeros((start.n_steps, *shape), np.float32)
        algo.observe_dataset({**{k: self.data[k] for k in keep}, "reward": data["reward"]})
        self.rounds = 1

    def random_steps(self, env_steps: int, n_envs: int) -> int:
        return 0

    def prepare(self, batch, rng: np.random.Generator):
        # env-major, so each env's steps of the round stay consecutive
        flat = {k: np.swapaxes(v, 0, 1).reshape(-1, *v.shape[2:]) for k, v in batch.items()}
        obs = {k[len("obs/"):]: v for k, v in flat.items() if k.startswith("obs/")}
        T, N = batch["reward"].shape
        new = {"action": self.expert(obs), "terminated": flat["terminated"], "truncated": flat["truncated"]}
        new["ends"] = np.maximum(flat["terminated"], flat["truncated"]) > 0
        new["ends"][T - 1::T] = True  # a window stops where the round's stretch of an env stops
        for k in self.data:
            value = new[k] if k in new else obs[k[len("obs/"):]]
            self.data[k] = np.concatenate([self.data[k], value.astype(self.data[k].dtype)])
        self.rounds += 1
        n, p = len(self.data["action"]), self.params
        zeros = {"reward": np.zeros(n, np.float32)}  # the cloning update reads obs and action; reward sizes the batch
        data = {**{k: v for k, v in self.data.items() if k != "ends"}, **zeros}
        last = last_steps(self.data["ends"]) if p.sequence_length else None
        return self.algo.prepare_batches(draw_batches(data, rng, p.update_times, p.batch_size, p.sequence_length, last))

    def update(self, state, batches):
        state, metrics = self.algo.update(state, batches)
        metrics = {**metrics, "labelled_steps": len(self.data["action"])}
        return state, metrics, self.params.update_times

    def checkpoint_files(self) -> dict:
        return {"dagger": {**self.data, "rounds": np.asarray(self.rounds)}}

    def restore(self, path: Path) -> None:
        saved = load_npz(path / "dagger.npz")
        self.rounds = int(saved.pop("rounds"))
        self.data = dict(saved)

    def close(self) -> None:
        self.expert.close()
