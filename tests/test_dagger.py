"""DAgger: expert labels, aggregated rounds, named observations, exact resume and bad input."""
import jax
import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters
from aquaml.algorithm import DAgger, DAggerParameters
from helpers import PositionActor, assert_resumes_exactly


@pytest.fixture(scope="module")
def expert_run(tmp_path_factory):
    params = SACParameters(n_epochs=4, update_interval=50, update_times=5, batch_size=32, mini_buffer_size=100,
                           hidden_sizes=(16,), display_interval=4, calculate_episodes=1, episode_length=40)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=tmp_path_factory.mktemp("expert"),
                            progress=False)
    run_dir = starter.run().run_dir
    starter.close()
    return str(run_dir)


def small(expert, **kw):
    base = dict(expert=expert, n_epochs=3, steps_per_round=40, expert_episodes=2, update_times=10, batch_size=32,
                display_interval=1, calculate_episodes=1, hidden_sizes=(16,), episode_length=40)
    return DAggerParameters(**{**base, **kw})


def test_rounds_aggregate_states_labelled_by_the_expert(expert_run, tmp_path):
    from aquaml.starter import load_policy

    starter = RLTaskStarter("Pendulum-v1", None, DAgger, small(expert_run), run_root=tmp_path, progress=False)
    learner = starter.feeder
    assert len(learner.data["action"]) == 80  # round 1: the expert's 2 episodes of 40 steps
    summary = starter.run()
    assert summary.env_steps == 120 and summary.grad_steps == 30
    assert len(learner.data["action"]) == 200 and learner.rounds == 4
    expert = load_policy(expert_run)
    want, _, _ = expert.act(expert.params, {"obs": learner.data["obs/obs"]}, jax.random.PRNGKey(1), deterministic=True)
    np.testing.assert_allclose(learner.data["action"], np.asarray(want["action"]), rtol=1e-5, atol=1e-6)
    assert "labelled_steps" in (summary.run_dir / "progress.csv").read_text().splitlines()[0]
    starter.close()


def test_an_expert_on_obs_teaches_a_learner_on_positions(expert_run, tmp_path):
    from aquaml.env import PositionOnlyEnv

    starter = RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"actor": PositionActor}, DAgger, small(expert_run),
                            run_root=tmp_path, progress=False)
    assert set(starter.learner.data) == {"obs/pos", "action", "terminated", "truncated", "ends"}
    assert np.isfinite(starter.run().final_eval_return)
    starter.close()


def test_a_recurrent_learner_clones_over_windows_from_the_states_it_carried(expert_run, tmp_path):
    from aquaml.env import PositionOnlyEnv

    def make(epochs, root):
        return RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), None, DAgger,
                             small(expert_run, n_epochs=epochs, lstm_size=8, sequence_length=4, burn_in=1),
                             run_root=root, progress=False)

    starter = make(2, tmp_path / "one")
    learner = starter.learner
    states = [f"obs/{k}" for k in learner.states]
    assert len(states) == 2 and all(not learner.data[k].any() for k in states)  # the expert's round: zeros
    starter.run()
    # learner rounds: the state the LSTM carried at each step, reset to zeros at its episodes' starts
    for k in states:
        played = learner.data[k][80:]
        assert np.abs(played).max() > 0
    ends = learner.data["ends"]
    assert ends[79] and ends[80 + 39] and ends[-1]  # the expert's last episode, each round's stretch
    starter.close()
    assert_resumes_exactly(make, 4, 160, tmp_path / "resume")


def test_dagger_resumes_exactly(expert_run, tmp_path):
    def make(epochs, root):
        return RLTaskStarter("Pendulum-v1", None, DAgger, small(expert_run, n_epochs=epochs), run_root=root,
                             progress=False)

    assert_resumes_exactly(make, 4, 160, tmp_path)


def test_bad_dagger_input_fails_before_training(expert_run, tmp_path):
    with pytest.raises(ValueError, match="dagger needs an expert: set expert=RUN_DIR"):
        RLTaskStarter("Pendulum-v1", None, DAgger, small(""), progress=False)
    with pytest.raises(FileNotFoundError, match="holds no run"):
        RLTaskStarter("Pendulum-v1", None, DAgger, small(str(tmp_path)), progress=False)
    with pytest.raises(ValueError, match=r"the expert's actor reads 'obs' of shape \(3,\); the learner's environment "
                                         r"gives it shape \(2,\)"):
        RLTaskStarter("PendulumNoVel-v1", None, DAgger, small(expert_run), progress=False)
