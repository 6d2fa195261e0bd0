"""The learning tests' runs: each function returns the environment, algorithm and parameters of
one learning test (``tests/test_learning.py``, ``tests/test_imitation_learning.py``, the imitation
tests' expert in ``tests/conftest.py``), so that ``benchmarks/spread.py`` measures the spread of
their scores over seeds with exactly the settings the tests assert on, and
``benchmarks/pendulum_data.py`` makes the same expert and medium-replay data."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from aquaml import RLTaskStarter, SACParameters
from aquaml.algorithm import SAC


class Run(NamedTuple):
    env: object
    algo: type
    params: object
    models: dict | None = None


def sac_pendulum(seed: int, steps: int = 20_000, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """SAC on Pendulum-v1: bursts of 50 env steps and 50 gradient steps, 64x64, lr 1e-3."""
    epochs = steps // 50
    return Run("Pendulum-v1", SAC, SACParameters(
        n_epochs=epochs, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=epochs // evals, calculate_episodes=calculate_episodes, seed=seed))


def sac_reacher(seed: int, steps: int = 20_000, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """SAC on Reacher-v5, two action dimensions: the Pendulum settings above (bursts of 50 env steps
    and 50 gradient steps, 64x64, lr 1e-3), where 50 steps are one Reacher episode."""
    epochs = steps // 50
    return Run("Reacher-v5", SAC, SACParameters(
        n_epochs=epochs, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=epochs // evals, calculate_episodes=calculate_episodes, seed=seed))


def slow_sac_pendulum() -> SACParameters:
    """The medium-replay recipe's learner (``recipes.stopped_replay``): SAC taking 5 gradient steps per
    50 env steps at lr 3e-4, so its buffer holds many episodes of every quality on the way."""
    return SACParameters(n_epochs=2000, update_interval=50, update_times=5, batch_size=256, learning_rate=3e-4,
                         hidden_sizes=(64, 64), display_interval=10, calculate_episodes=10, seed=1,
                         store_model_times=10**6)


def td3_pendulum(seed: int, steps: int = 20_000, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """TD3 with SAC's settings above."""
    from aquaml.algorithm import TD3, TD3Parameters

    epochs = steps // 50
    return Run("Pendulum-v1", TD3, TD3Parameters(
        n_epochs=epochs, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
        hidden_sizes=(64, 64), display_interval=epochs // evals, calculate_episodes=calculate_episodes, seed=seed))


def ppo_cartpole(seed: int, steps: int = 99_328, evals: int = 2, calculate_episodes: int = 10) -> Run:
    """PPO on CartPole-v1: 8 envs x 128 steps per rollout, minibatches of 256, 10 epochs."""
    from aquaml.algorithm import PPO, PPOParameters

    epochs = steps // 1024
    return Run("CartPole-v1", PPO, PPOParameters(
        n_epochs=epochs, n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
        display_interval=max(1, epochs // evals), calculate_episodes=calculate_episodes, seed=seed))


def offline(name: str, dataset: str, seed: int, steps: int = 10_000, evals: int = 2,
            calculate_episodes: int = 10, hidden_sizes: tuple[int, ...] = (256, 256), env: str = "Pendulum-v1") -> Run:
    """``bc``, ``iql`` or ``td3bc`` on a dataset of ``env``, 1,000 gradient steps per epoch (on Pendulum
    TD3+BC's alpha is 40: Pendulum's returns are large and negative, so alpha / mean|Q| is small and
    the default 2.5 stays close to cloning)."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[name]
    epochs = steps // 1000
    extra = {"alpha": 40.0} if name == "td3bc" and env == "Pendulum-v1" else {}
    return Run(env, algo, algo.Parameters(
        dataset=dataset, n_epochs=epochs, update_times=1000, display_interval=max(1, epochs // evals),
        calculate_episodes=calculate_episodes, hidden_sizes=hidden_sizes, seed=seed, **extra))


def sac_generator(name: str, dataset: str, seed: int, steps: int = 20_000, evals: int = 4,
                  calculate_episodes: int = 10) -> Run:
    """``gail``, ``airl`` or ``amp`` with a SAC generator (Discriminator-Actor-Critic style) from 10
    expert episodes, 50 gradient steps per 50 env steps; AMP learns from its style reward alone."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[name]
    epochs = steps // 50
    extra = {"task_reward_weight": 0.0, "style_reward_weight": 1.0} if name == "amp" else {}
    return Run("Pendulum-v1", algo, algo.Parameters(
        dataset=dataset, max_episodes=10, n_epochs=epochs, update_interval=50, update_times=50, batch_size=256,
        learning_rate=1e-3, hidden_sizes=(64, 64), display_interval=max(1, epochs // evals),
        calculate_episodes=calculate_episodes, seed=seed, **extra))


def ppo_generator(name: str, dataset: str, seed: int, steps: int = 100_352, evals: int = 2,
                  calculate_episodes: int = 10) -> Run:
    """``gail_ppo`` or ``airl_ppo`` from 10 expert episodes: 8 envs x 256 steps per rollout, RL Zoo's
    Pendulum settings (discount 0.9, learning rate 1e-3), initial log-std -1."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[name]
    epochs = steps // 2048
    return Run("Pendulum-v1", algo, algo.Parameters(
        dataset=dataset, max_episodes=10, n_envs=8, rollout_length=256, batch_size=256, discount=0.9,
        learning_rate=1e-3, log_std_init=-1.0, n_epochs=epochs, display_interval=max(1, epochs // evals),
        calculate_episodes=calculate_episodes, seed=seed))


def train(run: Run, run_root: str | Path, name: str | None = None):
    """Train ``run`` without a progress bar; returns its summary."""
    starter = RLTaskStarter(run.env, run.models, run.algo, run.params, name=name, run_root=run_root, progress=False)
    try:
        return starter.run()
    finally:
        starter.close()


def last_mean(summary, k: int) -> float:
    """The statistic the learning tests assert: the mean of the last ``k`` evaluations."""
    return float(np.mean([r for _, r in summary.eval_history[-k:]]))
