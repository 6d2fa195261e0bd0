"""Learning from data on Pendulum-v1 (fixed 200-step horizon), scored against a SAC expert trained
once per session: normalised score = (R - R_random) / (R_expert - R_random) (``pendulum_expert``).

Scores read the mean of the last two evaluations (10 episodes each): a single evaluation of a
policy still being trained swings by 0.1-0.3 on Pendulum, as the learning tests' notes say.
"""
import dataclasses

import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters
from aquaml.algorithm import BC, BCParameters
from aquaml.apps.collect import collect
from aquaml.data import save_data
from benchmarks.learning_runs import (last_mean, offline, ppo_generator, sac_generator, slow_sac_pendulum,
                                      train as spread_train)
from helpers import LSTMDiscriminator


def score(expert, summary) -> float:
    return expert.normalized(last_mean(summary, 2))


def train(env, algo, params, tmp_path, models=None):
    starter = RLTaskStarter(env, models, algo, params, run_root=tmp_path / "runs", progress=False)
    summary = starter.run()
    starter.close()
    print(f"{algo.name}: eval history {summary.eval_history}")
    return summary


@pytest.fixture(scope="module")
def expert_demos(pendulum_expert, tmp_path_factory):
    """20 deterministic expert episodes, with the positions (cos, sin) as their own field."""
    ds = collect(pendulum_expert.run_dir, 20)
    ds = dataclasses.replace(ds, observations={**ds.observations, "pos": ds.observations["obs"][:, :2]})
    return str(save_data(tmp_path_factory.mktemp("demos") / "expert20.npz", ds))


@pytest.fixture(scope="module")
def medium_replay(pendulum_expert, tmp_path_factory):
    """D4RL's medium-replay recipe: the replay buffer of a SAC run stopped once its evaluation
    reaches a third of the expert's normalised score (a slow learner: 5 gradient steps per 50
    env steps, so the buffer holds many episodes of every quality on the way)."""
    from benchmarks.recipes import stopped_replay

    ds, reached, steps = stopped_replay("Pendulum-v1", slow_sac_pendulum(), 1 / 3, pendulum_expert.expert_return,
                                        pendulum_expert.random_return, tmp_path_factory.mktemp("medium"))
    quality = pendulum_expert.normalized(float(np.mean(ds.returns())))
    print(f"medium-replay: stopped at {steps} steps, normalised {reached:.2f}, {ds.n_episodes} episodes of "
          f"mean normalised return {quality:.2f}")
    # what makes it medium-replay is the mix, not where the evaluation that stopped it landed (one
    # evaluation can jump past any window): measured, stopped at 0.37 with episodes averaging -0.13
    assert reached >= 1 / 3 and ds.n_steps == steps and quality <= 0.3
    return str(save_data(tmp_path_factory.mktemp("medium") / "medium_replay.npz", ds))


@pytest.mark.slow
def test_bc_clones_the_expert_from_20_episodes(pendulum_expert, expert_demos, tmp_path):
    params = BCParameters(dataset=expert_demos, n_epochs=10, update_times=1000, display_interval=5,
                          calculate_episodes=10)
    summary = train("Pendulum-v1", BC, params, tmp_path)
    assert summary.grad_steps == 10_000 and summary.env_steps == 0
    result = score(pendulum_expert, summary)
    print(f"bc: normalised {result:.2f}")
    assert result >= 0.85


@pytest.mark.slow
def test_offline_rl_beats_cloning_on_medium_replay(pendulum_expert, medium_replay, tmp_path):
    def offline_score(name: str, steps: int, evals: int, hidden_sizes=(256, 256)) -> float:
        summary = spread_train(offline(name, medium_replay, 0, steps, evals, hidden_sizes=hidden_sizes), tmp_path)
        print(f"{name}: eval history {summary.eval_history}")
        return score(pendulum_expert, summary)

    # the mean of the last two evaluations (8k and 10k steps), measured (`spread.py TASK --seeds 0,1,2,3
    # --steps 10000 --evals 5 --last 2`): TD3+BC at 64x64 (td3bc_medium_replay_64) 0.862, 0.793, 0.872,
    # 0.858 (at 256x256 0.912, 0.950 on seeds 0, 1, at about three times the cost); IQL
    # (iql_medium_replay) 0.683, 0.733, 0.551, 0.725: IQL needs its 256x256 networks (at 128x128 0.62 at
    # 11k-12k, at 64x64 it never learns); cloning has learned what it will by 4k steps (-0.103 at 4k)
    bc, iql, td3bc = (offline_score("bc", 4_000, 2), offline_score("iql", 10_000, 5),
                      offline_score("td3bc", 10_000, 5, hidden_sizes=(64, 64)))
    print(f"normalised: bc {bc:.2f}, iql {iql:.2f}, td3bc {td3bc:.2f}")
    # beating cloning by a margin, not by a hair one seed could reverse: cloning learns the data's
    # average behaviour (measured, benchmarks/offline_vs_d3rlpy.py: bc -0.10, d3rlpy's -0.10), so the
    # bands lie at least 0.55 apart
    assert iql >= 0.45 and td3bc >= 0.7
    assert bc <= 0.3


@pytest.fixture(scope="module")
def noisy_demos(pendulum_expert, tmp_path_factory):
    """20 expert episodes with sampled (stochastic) actions: the states around the expert's path
    that a cloned policy drifts into are covered too."""
    ds = collect(pendulum_expert.run_dir, 20, deterministic=False)
    ds = dataclasses.replace(ds, observations={**ds.observations, "pos": ds.observations["obs"][:, :2]})
    return str(save_data(tmp_path_factory.mktemp("demos") / "noisy20.npz", ds))


@pytest.mark.slow
def test_an_lstm_cloned_on_positions_recovers_what_a_feed_forward_actor_cannot(pendulum_expert, noisy_demos,
                                                                              tmp_path):
    """Named data plus recurrence: the demonstrations come from a full-state expert; the actors read
    only the positions (cos, sin) of ``PositionOnlyEnv``. An LSTM infers the velocity from the
    sequence (windows of 16 steps, 4 of burn-in); a feed-forward actor cannot."""
    from aquaml.env import PositionOnlyEnv
    from aquaml.model.defaults import MLPActor

    # four evaluations, the last two (9k and 12k gradient steps) asserted; measured over the Keras seeds the
    # actors are made with (0-3): lstm 0.858, 0.715, 0.860, 0.949 (seed 0 at 6k: 0.28, still learning)
    common = dict(dataset=noisy_demos, n_epochs=12, update_times=1000, display_interval=3, calculate_episodes=10)
    lstm = MLPActor(("pos",), (1,), (256,), 1e-3, log_std=False, lstm_size=64)
    recurrent = train(PositionOnlyEnv("Pendulum-v1"), BC, BCParameters(**common, sequence_length=16, burn_in=4),
                      tmp_path, {"actor": lstm})
    flat = MLPActor(("pos",), (1,), (256, 256), 3e-4, log_std=False)
    feed_forward = train(PositionOnlyEnv("Pendulum-v1"), BC, BCParameters(**common), tmp_path, {"actor": flat})
    r, f = score(pendulum_expert, recurrent), score(pendulum_expert, feed_forward)
    print(f"normalised: lstm {r:.2f}, feed-forward {f:.2f}")
    assert r >= 0.65 and f < 0.4


#: env steps of each SAC generator: GAIL and AMP plateau by 10k (measured on benchmarks/.data's 10
#: expert episodes, Keras seed 0, evaluations every 2.5k: gail seeds 0, 1 reach 0.981 and 0.995 at 10k
#: and stay within 0.004 to 20k; amp 0.985 and 1.006, unchanged to 20k), so they stop at 15k, their
#: last two evaluations at 10k and 15k; AIRL keeps 20k, since its learned reward trains another agent
#: (measured, `spread.py airl --seeds 0,1,2,3 --evals 4`: 0.99, 0.99, 0.94, 0.99 at 15k-20k)
ADVERSARIAL_STEPS = {"gail": 15_000, "amp": 15_000, "airl": 20_000}


def adversarial(name, expert_demos, tmp_path):
    """A SAC generator (benchmarks/learning_runs.py ``sac_generator``) from 10 expert episodes (the
    issue allows 50k env steps), evaluated every 5k env steps."""
    steps = ADVERSARIAL_STEPS[name]
    summary = spread_train(sac_generator(name, expert_demos, 0, steps, evals=steps // 5000), tmp_path / "runs")
    print(f"{name}: eval history {summary.eval_history}")
    assert summary.env_steps == steps
    return summary


#: the tests that share the AIRL run go to one pytest-xdist worker (tests/conftest.py spreads the others)
AIRL_RUN = pytest.mark.xdist_group("airl_run")


@pytest.fixture(scope="module")
def airl_run(expert_demos, tmp_path_factory):
    return adversarial("airl", expert_demos, tmp_path_factory.mktemp("airl"))


@pytest.mark.slow
@pytest.mark.parametrize("name,floor", [("gail", 0.75), pytest.param("airl", 0.6, marks=AIRL_RUN), ("amp", 0.6)])
def test_adversarial_imitation_from_10_episodes(name, floor, pendulum_expert, expert_demos, tmp_path, request):
    summary = request.getfixturevalue("airl_run") if name == "airl" else adversarial(name, expert_demos, tmp_path)
    result = score(pendulum_expert, summary)
    print(f"{name}: normalised {result:.2f}")
    assert result >= floor


@pytest.mark.slow
@AIRL_RUN
def test_airls_learned_reward_trains_a_fresh_agent(pendulum_expert, airl_run, tmp_path):
    """A fresh SAC (another seed) on AIRL's reward model alone, 20k env steps; evaluations report
    Pendulum's own reward."""
    params = SACParameters(n_epochs=400, update_interval=50, update_times=50, batch_size=256, learning_rate=1e-3,
                           hidden_sizes=(64, 64), display_interval=100, calculate_episodes=10, seed=1)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=tmp_path, progress=False,
                            reward_model=airl_run.run_dir)
    summary = starter.run()
    starter.close()
    result = score(pendulum_expert, summary)
    print(f"sac on airl's reward: eval history {summary.eval_history}, normalised {result:.2f}")
    assert result >= 0.6


# 65,536 env steps (32 rollouts), eight evaluations, the last two (57,344 and 65,536 steps) asserted.
# Measured (benchmarks/spread.py {gail,airl}_ppo --seeds 0,1,2 --steps 100352 --evals 12: the same
# evaluation grid, every 8,192 steps): at 57k-65k gail_ppo 0.893, 0.853, 0.851 and airl_ppo 0.957,
# 0.957, 0.866. Later, AIRL's learned reward can drift: seed 1 fell to 0.52 by 100k steps.
@pytest.mark.slow
@pytest.mark.parametrize("name,floor", [("gail_ppo", 0.75), ("airl_ppo", 0.6)])
def test_ppo_generators_imitate_from_10_episodes(name, floor, pendulum_expert, expert_demos, tmp_path):
    """PPO generators (8 envs x 256 steps per rollout, 4 discriminator passes over each) on RL
    Zoo's Pendulum settings (discount 0.9, learning rate 1e-3); on-policy, so about three times
    the SAC generator's env steps."""
    summary = spread_train(ppo_generator(name, expert_demos, 0, 65_536, evals=8), tmp_path / "runs")
    print(f"{name}: eval history {summary.eval_history}")
    assert summary.env_steps == 65_536 and len(summary.eval_history) == 8
    result = score(pendulum_expert, summary)
    print(f"{name}: normalised {result:.2f}")
    assert result >= floor


class LSTMDiscriminator32(LSTMDiscriminator):
    """Velocity is not in a single step's (positions, action): the LSTM can infer it."""

    units, hidden_units, lr = 32, 64, 3e-4


@pytest.mark.slow
def test_recurrent_gail_on_positions(pendulum_expert, expert_demos, tmp_path, monkeypatch):
    """The seed's POMDP LSTM actor on positions and an LSTM discriminator on (positions, action),
    both trained over 16-step windows (burn-in 4) of the replay buffer and of the expert data.

    10k env steps, evaluations every 2.5k, the last two (7.5k, 10k) asserted. Measured (this setup on
    benchmarks/.data's 10 expert episodes, Keras seed 0, run seeds 0 and 1, evaluations every 2.5k to
    15k): -0.19, 0.06, 0.985, 0.973, 0.984, 0.962 and -0.17, 0.40, 0.968, 0.994, 0.994, 0.979: the
    mean at 7.5k-10k is 0.979 and 0.981, the plateau reached by 7.5k."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))  # undone after the test
    from recurrent_sac_pendulum_pos import Actor_net, Q_net

    from aquaml.algorithm import GAIL, GAILParameters
    from aquaml.env import PositionOnlyEnv

    params = GAILParameters(dataset=expert_demos, max_episodes=10, n_epochs=200, update_interval=50, update_times=50,
                            batch_size=256, sequence_length=16, burn_in=4, learning_rate=1e-3, display_interval=50,
                            calculate_episodes=10)
    models = {"actor": Actor_net, "qf1": Q_net, "qf2": Q_net, "discriminator": LSTMDiscriminator32}
    summary = train(PositionOnlyEnv("Pendulum-v1"), GAIL, params, tmp_path, models)
    result = score(pendulum_expert, summary)
    print(f"recurrent gail: normalised {result:.2f}")
    assert summary.env_steps == 10_000 and len(summary.eval_history) == 4
    assert result >= 0.75


@pytest.mark.slow
def test_dagger_after_5_rounds_of_4_episodes(pendulum_expert, tmp_path):
    """Round 1: the expert's 4 episodes; rounds 2-5: 4 episodes (800 steps) of the learner, labelled by the expert."""
    from aquaml.algorithm import DAgger, DAggerParameters

    params = DAggerParameters(expert=str(pendulum_expert.run_dir), expert_episodes=4, steps_per_round=800, n_epochs=4,
                              update_times=2000, display_interval=1, calculate_episodes=10)
    summary = train("Pendulum-v1", DAgger, params, tmp_path)
    assert summary.env_steps == 3200
    result = score(pendulum_expert, summary)
    print(f"dagger: normalised {result:.2f}")
    assert result >= 0.85
