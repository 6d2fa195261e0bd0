"""DAgger (Ross et al. 2011): behaviour cloning on the learner's own states, labelled by an expert.

Round 1 is the expert's (Ross et al.'s ``beta_1 = 1``): its demonstrations, from ``dataset`` or
``expert_episodes`` episodes the expert plays, start the data. Every epoch is a further round:
the learner plays ``steps_per_round`` environment steps with its own (stochastic) policy, the
expert labels each visited state with its deterministic action, the labelled states join the
aggregate, and the actor takes ``update_times`` cloning steps on batches drawn from all of it.
The expert is a run folder (``expert=RUN_DIR``; the run session loads its policy) whose actor
reads observations the learner's environment provides; the learner may read others (an actor on ``'pos'`` taught by an expert
on ``'obs'``).

A recurrent learner (``sequence_length``) clones over windows of consecutive steps of the
aggregate that never cross an episode end (nor the end of a round's stretch of one
environment), each starting from the state the learner carried when it played that step
(zeros in the expert's round), warmed up for ``burn_in`` steps.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from aquaml.algorithm.bc import BC
from aquaml.algorithm.builtin_parameters import DAggerParameters
from aquaml.algorithm.feeders import Feeder
from aquaml.data.windows import draw_batches, ends_of, last_steps
from aquaml.tools.checkpoint import load_npz


class DAggerFeeder(Feeder):
    """Aggregates expert-labelled states and draws cloning batches (or windows) from all of them.

    ``expert`` is the loaded policy that labels states (:class:`aquaml.sampler.Policy`, set to play
    in the learner's environment) and ``dataset`` the demonstrations of round 1; without one, the
    expert plays ``expert_episodes`` episodes. The aggregate is
    flat, in the order played: each round's steps env by env, with the episode flags and ``ends``
    marking where a window must stop.
    """

    uses_dataset = "optional"
    uses_expert = True
    requires = ("prepare_batches", "observe_dataset", "norm_shapes")
    requires_instance = ("models",)
    reads_parameters = ("expert", "expert_episodes", "dataset", "max_episodes", "sequence_length", "batch_size",
                        "update_times")

    def __init__(self, algo, params, *, fields=None, dataset=None, expert=None) -> None:
        super().__init__(algo, params)
        check_expert(expert, {k[len("obs/"):]: shape for k, (shape, _) in fields.items() if k.startswith("obs/")})
        self.expert = expert
        if dataset is None:
            dataset = expert.record(params.expert_episodes, metadata={"source": f"expert {expert.source}"})
        names = list(algo.norm_shapes())
        data = dataset.transitions(names)
        keep = (*(f"obs/{n}" for n in names), "action", "terminated", "truncated")
        self.data = {k: data[k] for k in keep}
        self.data["ends"] = ends_of(dataset.lengths)
        self.states = algo.models["actor"].state_outputs if params.sequence_length else {}
        for name, shape in self.states.items():  # the expert's round carries no learner state: zeros
            self.data[f"obs/{name}"] = np.zeros((dataset.n_steps, *shape), np.float32)
        algo.observe_dataset({**{k: self.data[k] for k in keep}, "reward": data["reward"]})
        self.rounds = 1

    def prepare(self, batch, rng: np.random.Generator):
        # env-major, so each env's steps of the round stay consecutive
        flat = {k: np.swapaxes(v, 0, 1).reshape(-1, *v.shape[2:]) for k, v in batch.items()}
        obs = {k[len("obs/"):]: v for k, v in flat.items() if k.startswith("obs/")}
        T, N = batch["reward"].shape
        new = {"action": self.expert.actions(obs), "terminated": flat["terminated"], "truncated": flat["truncated"]}
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


class DAgger(BC):
    """DAgger with a cloning update (``aquaml train dagger ENV --set expert=RUN_DIR``)."""

    name: ClassVar[str] = "dagger"
    Parameters: ClassVar[type] = DAggerParameters
    feeder: ClassVar[type] = DAggerFeeder


def check_expert(expert, available) -> None:
    """Refuse an expert that cannot label the learner's states: recurrent, or reading observations
    the learner's environment (``available``: name -> shape) lacks or shapes differently."""
    if expert is None:
        raise ValueError("dagger needs an expert: set expert=RUN_DIR (a trained run folder)")
    if expert.state_outputs:
        raise ValueError(f"the expert in {expert.source} is recurrent; dagger labels states with feed-forward "
                         "experts only (a recurrent expert would need its state along the learner's path)")
    missing = [k for k in expert.inputs if k not in available]
    if missing:
        raise ValueError(f"the expert's actor reads {missing}, which the learner's environment does not provide "
                         f"(it provides {', '.join(sorted(available))})")
    for k in expert.inputs:
        if tuple(available[k]) != tuple(expert.obs_shapes[k]):
            raise ValueError(f"the expert's actor reads {k!r} of shape {tuple(expert.obs_shapes[k])}; the learner's "
                             f"environment gives it shape {tuple(available[k])}")
