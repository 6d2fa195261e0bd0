"""D4RL-style dataset recipes, regenerated locally: random returns, "medium-replay" (the replay
buffer of an RL run stopped once its evaluation reaches a chosen normalised score), and episodes of
a scripted controller (Reacher-v5's, two action dimensions, needing no training).

Normalised score = ``(R - R_random) / (R_expert - R_random)``; the tests (``from benchmarks.recipes
import ...``, run from the repository root) and ``benchmarks/offline_vs_d3rlpy.py`` use these
recipes on Pendulum-v1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from aquaml.algorithm.registry import builtin_algorithms
from aquaml.data import Dataset
from aquaml.env import action_metadata
from aquaml.sampler import EVAL_FIRST_EPISODE, episode_seed
from aquaml.sampler.collector import EVAL_STREAM
from aquaml.starter import Hook, RLTaskStarter


@dataclass
class Reference:
    """The returns that normalise scores on a task: ``(R - R_random) / (R_expert - R_random)``."""

    expert_return: float
    random_return: float

    def normalized(self, returns) -> float:
        return (float(np.mean(returns)) - self.random_return) / (self.expert_return - self.random_return)


def expert_reference(run_dir: str | Path, env_id: str, episodes: int = 20) -> Reference:
    """A trained run's mean deterministic return over ``episodes`` held-out evaluation episodes
    (numbered from ``EVAL_FIRST_EPISODE``), and uniform random actions' on the same episodes."""
    from aquaml.starter import load_policy

    policy = load_policy(run_dir)
    evaluator = policy.evaluator()
    try:
        expert, _ = evaluator(policy.params, episodes, first_episode=EVAL_FIRST_EPISODE)
    finally:
        evaluator.close()
    return Reference(float(np.mean(expert)), float(np.mean(random_returns(env_id, episodes))))


def random_returns(env_id: str, episodes: int, seed: int = 0, first_episode: int = EVAL_FIRST_EPISODE) -> np.ndarray:
    """Returns of uniformly random actions over seeded evaluation-stream episodes."""
    env, out = gym.make(env_id), []
    for e in range(episodes):
        env.reset(seed=episode_seed(seed, EVAL_STREAM, first_episode + e))
        env.action_space.seed(e)
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(r), terminated or truncated
        out.append(total)
    env.close()
    return np.asarray(out)


def stopped_replay(env_id: str, params, stop_at: float, expert_return: float, random_return: float,
                   run_root: str | Path) -> tuple[Dataset, float, int]:
    """Train ``params`` (SAC or TD3 parameters) on ``env_id`` until an evaluation reaches the
    normalised score ``stop_at``; returns ``(its replay buffer as episodes, the score reached,
    env steps)``. Raises if the run ends first."""
    def normalized(r: float) -> float:
        return (r - random_return) / (expert_return - random_return)

    class StopThere(Hook):
        def on_display(self, loop, row):
            if normalized(row["eval_return_mean"]) >= stop_at:
                loop.request_stop()

    algo = next(cls for cls in builtin_algorithms().values() if isinstance(params, cls.Parameters))
    starter = RLTaskStarter(env_id, None, algo, params, run_root=run_root, progress=False, hooks=[StopThere()])
    try:
        summary = starter.run()
    finally:
        starter.close()
    if not starter.loop.stopped:
        raise RuntimeError(f"the run ended at {summary.env_steps} steps below the normalised score {stop_at}")
    flat = {k[len("data/"):]: v for k, v in starter.feeder.buffer.state_dict().items() if k.startswith("data/")}
    meta = {"env": env_id, "source": f"replay buffer stopped at {stop_at:.2f}", **action_metadata(starter.agent.env)}
    dataset = Dataset.from_transitions(flat, n_envs=params.n_envs, metadata=meta)
    return dataset, normalized(summary.final_eval_return), summary.env_steps


#: Reacher-v5's link lengths (its XML): the fingertip sits L1 + L2 from the base when stretched
REACHER_LINKS = (0.1, 0.11)


def reacher_controller(obs: np.ndarray, kp: float = 20.0, kd: float = 0.1) -> np.ndarray:
    """Reacher-v5's two joint torques by Jacobian transpose: ``tau = kp J(q)^T e - kd qdot``, with
    ``e`` the target minus the fingertip (observation 8:10 is fingertip minus target). Gains
    chosen on 20 seeded episodes: mean return -5.4 (std 2.3), where uniform random actions get -43."""
    (l1, l2), (c1, c2, s1, s2) = REACHER_LINKS, obs[:4]
    c12, s12 = c1 * c2 - s1 * s2, s1 * c2 + c1 * s2
    jacobian = np.array([[-l1 * s1 - l2 * s12, -l2 * s12], [l1 * c1 + l2 * c12, l2 * c12]])
    return np.clip(kp * jacobian.T @ -obs[8:10] - kd * obs[6:8], -1.0, 1.0).astype(np.float32)


def controller_returns(env_id: str, controller, episodes: int, seed: int = 0,
                       first_episode: int = EVAL_FIRST_EPISODE) -> np.ndarray:
    """Returns of ``controller(obs) -> action`` over the evaluation stream's seeded episodes (those
    an AquaML evaluation plays), so they normalise the same episodes the agents are scored on."""
    env, out = gym.make(env_id), []
    for e in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, EVAL_STREAM, first_episode + e))
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, _ = env.step(controller(obs))
            total, done = total + float(r), terminated or truncated
        out.append(total)
    env.close()
    return np.asarray(out)


def controller_episodes(env_id: str, controller, episodes: int, noise: float = 0.0, seed: int = 0) -> Dataset:
    """``episodes`` of ``controller(obs) -> action``; on a Box action space with Gaussian noise of std
    ``noise`` added to its actions (clipped to the space): demonstrations whose states cover some
    way around its path."""
    env, rng, eps = gym.make(env_id), np.random.default_rng(seed), []
    space = env.action_space
    box = isinstance(space, gym.spaces.Box)
    for e in range(episodes):
        o, _ = env.reset(seed=seed * 100_003 + e)
        obs, actions, rewards, done = [o], [], [], False
        while not done:
            a = controller(o)
            if box and noise:
                a = np.clip(a + noise * rng.standard_normal(space.shape), space.low, space.high).astype(np.float32)
            o, r, terminated, truncated, _ = env.step(a)
            obs.append(o), actions.append(a), rewards.append(r)
            done = terminated or truncated
        T = len(actions)
        eps.append({"observations": {"obs": np.asarray(obs, np.float32)}, "action": np.asarray(actions),
                    "reward": np.asarray(rewards, np.float32), "terminated": np.eye(T, dtype=bool)[-1] & terminated,
                    "truncated": np.eye(T, dtype=bool)[-1] & truncated})
    env.close()
    bounds = {"action_low": space.low.astype(float).tolist(),
              "action_high": space.high.astype(float).tolist()} if box else {}
    return Dataset.from_episodes(eps, {"env": env_id, "source": f"scripted controller, action noise {noise}",
                                       **bounds})


@dataclass
class ScriptedData(Reference):
    """Demonstrations of a scripted controller; its expert return is the controller's own
    (noise-free) mean over 20 evaluation episodes."""

    demos: Path


def reacher_data(folder: str | Path, episodes: int = 30, noise: float = 0.2) -> ScriptedData:
    """Reacher-v5 (two action dimensions): ``episodes`` of :func:`reacher_controller` with action
    noise ``noise``, saved in ``folder``; made in seconds, with no training."""
    from aquaml.data import save_data

    path = save_data(Path(folder) / f"reacher_controller{episodes}.npz",
                     controller_episodes("Reacher-v5", reacher_controller, episodes, noise))
    return ScriptedData(float(np.mean(controller_returns("Reacher-v5", reacher_controller, 20))),
                        float(np.mean(random_returns("Reacher-v5", 20))), Path(path))
