import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aquaml import GymnasiumEnv, RLTaskStarter, SACParameters
from aquaml.cli import main as cli
from aquaml.env import EnvContractError
from aquaml.model import MLPActor
from aquaml.starter.loading import load_run
from aquaml.tools.checkpoint import latest_checkpoint, load_checkpoint, tree_to_arrays
from aquaml.tools.logger import COLUMNS
from helpers import Drift, SeedStyleEnv, TinyActor, TinyQ

ROOT = Path(__file__).resolve().parents[1]


def small(**kw) -> SACParameters:
    base = dict(n_epochs=6, update_interval=30, update_times=8, batch_size=32, mini_buffer_size=60,
                display_interval=2, calculate_episodes=2, store_model_times=1, hidden_sizes=(16, 16), seed=3)
    return SACParameters(**{**base, **kw})


def test_run_writes_config_logs_tensorboard_and_checkpoints(run_root):
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(), run_root=run_root, progress=False)
    summary = starter.run()
    run_dir = summary.run_dir
    assert run_dir.parent == run_root / "sac_Pendulum-v1"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["parameters"]["batch_size"] == 32 and config["seed"] == 3
    assert config["versions"]["jax"] and config["models"]["actor"] == "default"
    with open(run_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS and [int(r["env_steps"]) for r in rows] == [60, 120, 180]
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert summary.env_steps == 180 and summary.grad_steps == 8 * 5  # no updates before 60 steps
    assert [s for s, _ in summary.eval_history] == [60, 120, 180]
    assert summary.final_eval_return == summary.eval_history[-1][1] < 0
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    assert ckpt.name == "epoch_00000006" and len(list((run_dir / "checkpoints").glob("epoch_*"))) == 2
    # the Keras weight files hold exactly the trained actor
    arrays, meta = load_checkpoint(ckpt)
    assert meta["env_steps"] == 180
    fresh = MLPActor(("obs",), (1,), (16, 16))
    fresh(np.zeros((1, 3), np.float32))
    fresh.load_weights(ckpt / "models" / "actor.weights.h5")
    for var, trained in zip(fresh.trainable_variables, starter.state.actor["net"]):
        np.testing.assert_array_equal(np.asarray(var.value), np.asarray(trained))


@pytest.mark.parametrize("env, n_envs, n_workers", [("Pendulum-v1", 1, 0), ("seed_style", 1, 0), ("Pendulum-v1", 3, 0),
                                                    ("seed_style", 3, 2)])
def test_resume_is_bit_exact(run_root, env, n_envs, n_workers):
    """N epochs in one run == N/2 epochs, resume, N/2 epochs (mid-episode checkpoint)."""
    make = (lambda: "Pendulum-v1") if env == "Pendulum-v1" else SeedStyleEnv
    models = None if env == "Pendulum-v1" else {"actor": TinyActor, "qf1": TinyQ, "qf2": TinyQ}
    # 30-step epochs end mid-episode
    params = small(n_epochs=8, display_interval=4, episode_length=45, n_envs=n_envs)
    full = RLTaskStarter(make(), models, algo_hyperparameter=params, run_root=run_root, name="full", progress=False)
    full_summary = full.run()

    half = RLTaskStarter(make(), models, algo_hyperparameter=params.replace(n_epochs=4), run_root=run_root,
                         name="half", progress=False, n_workers=n_workers)
    run_dir = half.run().run_dir
    # the checkpoint really was taken mid-episode
    assert half.collector.state_dict()[0]["envs"][0]["episode_steps"] > 0
    half.close()
    resumed = RLTaskStarter(make(), models, algo_hyperparameter=params, run_root=run_root, resume=run_dir,
                            progress=False, n_workers=n_workers)
    resumed_summary = resumed.run()

    a, b = tree_to_arrays(full.state), tree_to_arrays(resumed.state)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert np.array_equal(full.act_key, resumed.act_key)
    assert full.rng.bit_generator.state == resumed.rng.bit_generator.state
    for key in full.buffer.data:
        assert np.array_equal(full.buffer.data[key], resumed.buffer.data[key]), key
    assert full_summary.eval_history == resumed_summary.eval_history
    assert full_summary.train_returns == resumed_summary.train_returns
    assert resumed_summary.env_steps == 240 * n_envs and resumed_summary.run_dir == run_dir
    with open(run_dir / "progress.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [120 * n_envs, 240 * n_envs]


def test_resume_refuses_changed_parameters_and_trims_the_log(run_root):
    params = small(n_epochs=4, display_interval=1, store_model_times=2)
    run_dir = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=run_root, progress=False).run().run_dir
    with pytest.raises(ValueError, match=r"different parameters \['batch_size'\]"):
        RLTaskStarter("Pendulum-v1", algo_hyperparameter=params.replace(batch_size=64), resume=run_dir)
    # a crash after the epoch-3 log row but before its checkpoint: the resumed run rewrites that row
    ckpts = run_dir / "checkpoints"
    (ckpts / "latest").write_text("epoch_00000002")
    resumed = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, resume=run_dir, progress=False)
    with open(run_dir / "progress.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [30, 60]
    resumed.run()
    with open(run_dir / "progress.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [30, 60, 90, 120]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_ppo_resume_is_bit_exact(run_root, env_id):
    from aquaml.algorithm import PPO, PPOParameters

    params = PPOParameters(n_epochs=6, n_envs=3, rollout_length=20, batch_size=12, n_update_epochs=2,
                           display_interval=3, calculate_episodes=1, store_model_times=1, hidden_sizes=(16,),
                           scale_reward=True, seed=4)
    full = RLTaskStarter(env_id, algo=PPO, algo_hyperparameter=params, run_root=run_root, name="f", progress=False)
    full.run()
    half = RLTaskStarter(env_id, algo=PPO, algo_hyperparameter=params.replace(n_epochs=3), run_root=run_root,
                         name="h", progress=False)
    run_dir = half.run().run_dir
    resumed = RLTaskStarter(env_id, algo=PPO, algo_hyperparameter=params, resume=run_dir, progress=False)
    resumed.run()
    a, b = tree_to_arrays(full.state), tree_to_arrays(resumed.state)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert full.summary().eval_history == resumed.summary().eval_history


def test_off_policy_algorithms_refuse_discrete_actions(run_root):
    with pytest.raises(ValueError, match="CartPole-v1 has discrete actions; SAC needs continuous ones"):
        RLTaskStarter("CartPole-v1", run_root=run_root)


def test_unknown_parameters_and_roles_are_rejected_before_training(run_root):
    with pytest.raises(TypeError, match="SACParameters"):
        RLTaskStarter("Pendulum-v1", algo_hyperparameter={"batch_size": 3}, run_root=run_root)
    with pytest.raises(ValueError, match=r"unknown roles \['critic'\]"):
        RLTaskStarter("Pendulum-v1", {"critic": TinyQ}, run_root=run_root)


def test_broken_env_fails_before_training(run_root):
    class NanAtReset(SeedStyleEnv):
        def reset(self):
            return {"obs": np.full((1, 1), np.nan, np.float32)}

    with pytest.raises(EnvContractError, match=r"NanAtReset.reset\(\): observation 'obs' contains NaN"):
        RLTaskStarter(NanAtReset(), algo_hyperparameter=small(episode_length=50), run_root=run_root)
    starter = RLTaskStarter(SeedStyleEnv(bad="shape", bad_at=5), algo_hyperparameter=small(episode_length=50),
                            run_root=run_root, progress=False)
    with pytest.raises(EnvContractError, match="observation 'obs' has shape"):
        starter.run()


def test_collector_stores_true_next_obs_across_truncation():
    starter = RLTaskStarter(GymnasiumEnv(Drift(horizon=10)), algo_hyperparameter=small(episode_length=1000),
                            progress=False)
    batch, _ = starter.collector.collect(25, starter.state.actor, starter.act_key, np.random.default_rng(0))
    batch = {k: v[:, 0] for k, v in batch.items()}  # the only env
    assert list(np.flatnonzero(batch["truncated"])) == [9, 19] and not batch["terminated"].any()
    # within an episode next_obs is the following obs; at the cut it is the true last obs, not a reset
    np.testing.assert_array_equal(batch["next_obs/obs"][:9], batch["obs/obs"][1:10])
    assert not np.array_equal(batch["next_obs/obs"][9], batch["obs/obs"][10])
    np.testing.assert_allclose(batch["next_obs/obs"][9], batch["obs/obs"][9] + 0.1 * (1 + 2 * batch["action"][9]),
                               rtol=1e-5)


def test_recurrent_state_outputs_are_fed_back_and_reset(run_root):
    import keras

    class Recurrent(TinyActor):
        def __init__(self):
            super().__init__()
            self.cell = keras.layers.Dense(4, activation="tanh")
            self.input_name = ("obs", "hidden")
            self.output_info = {"action": (1,), "hidden": (4,)}

        def call(self, obs, hidden):
            h = self.cell(keras.ops.concatenate([obs, hidden], axis=-1))
            return self.mu(h), h

    starter = RLTaskStarter(GymnasiumEnv(Drift(horizon=5)), {"actor": Recurrent}, algo_hyperparameter=small(episode_length=1000),
                            run_root=run_root, progress=False)
    batch, _ = starter.collector.collect(7, starter.state.actor, starter.act_key, np.random.default_rng(0))
    batch = {k: v[:, 0] for k, v in batch.items()}
    hidden = batch["obs/hidden"]
    assert np.all(hidden[0] == 0) and np.all(hidden[5] == 0)  # zero at each episode start
    assert np.all(hidden[1] != 0)
    np.testing.assert_array_equal(batch["next_obs/hidden"][:4], hidden[1:5])
    summary = starter.run()  # trains with the stored hidden states as inputs
    assert summary.grad_steps > 0 and np.isfinite(summary.final_eval_return)
    assert starter.buffer.data["obs/hidden"][: starter.buffer.size].any()


def test_tutorial_example_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # as in a fresh shell
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "tutorial1_sac_pendulum.py"), "12"],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "final evaluation return" in r.stdout
    assert list((tmp_path / "runs").glob("SAC/*/checkpoints/latest"))  # the seed names the run SAC


def test_cli_train_eval_resume(run_root, capsys):
    args = ["train", "sac", "Pendulum-v1", "--steps", "120", "--seed", "5", "--name", "cli", "--run-root",
            str(run_root), "--set", "update_interval=30", "--set", "mini_buffer_size=60", "--set", "batch_size=32",
            "--set", "hidden_sizes=16,16", "--set", "display_interval=2", "--set", "calculate_episodes=1"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "final evaluation return:" in out
    run_dir = Path(out.split("run directory: ")[1].strip())
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 5
    # by default eval plays the episodes training's evaluations play: the final evaluation's number
    final = out.split("final evaluation return: ")[1].split()[0]
    assert cli(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"evaluation over 1 episodes (episode 0): return {final} +- 0.00" in out
    assert f"training's evaluation of this checkpoint at 120 steps: {final} over episode 0 (the same episodes)" in out
    run = load_run(run_dir)
    policy = run.policy()
    assert float(np.mean(policy.evaluator()(policy.params, 1)[0])) == run.training_evaluation()[1]  # exactly
    assert cli(["eval", str(run_dir), "--episodes", "2", "--held-out"]) == 0
    out = capsys.readouterr().out
    assert "evaluation over 2 episodes (episodes 1,000,000-1,000,001)" in out
    assert "(differs: held-out episodes, 2 episodes, not 1)" in out
    assert cli(["train", "sac", "Pendulum-v1", "--resume", str(run_dir), "--steps", "180"]) == 0
    with open(run_dir / "progress.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [60, 120, 180]


def test_cli_set_update_interval_re_derives_update_times(run_root, capsys):
    """``--set update_interval=1`` alone: one gradient step per env step (update_times follows its
    source after --set), and config.json records the value the run used."""
    args = ["train", "sac", "Pendulum-v1", "--steps", "40", "--run-root", str(run_root), "--set", "update_interval=1",
            "--set", "mini_buffer_size=10", "--set", "batch_size=8", "--set", "hidden_sizes=8",
            "--set", "display_interval=20", "--set", "calculate_episodes=1", "--set", "episode_length=20"]
    assert cli(args) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].strip())
    parameters = json.loads((run_dir / "config.json").read_text())["parameters"]
    assert (parameters["update_interval"], parameters["update_times"]) == (1, 1)
    assert "update_times" in parameters["derived"]
    with open(run_dir / "progress.csv") as f:
        last = list(csv.DictReader(f))[-1]
    # by hand: 40 epochs of 1 env step, and one gradient step in each epoch from the 10th on, when
    # the buffer holds mini_buffer_size = 10 transitions (update_times = 50 would make 1550)
    assert (int(last["env_steps"]), int(last["grad_steps"])) == (40, 31)


@pytest.mark.parametrize("args, message", [
    (["train", "ppo2", "Pendulum-v1"],
     "unknown algorithm 'ppo2' (did you mean ppo?); valid choices: airl, airl_ppo, amp, bc, dagger, gail, gail_ppo, "
     "iql, ppo, sac, td3, td3bc, vae"),
    (["train", "sac", "Pendulum-v0"], "unknown environment id 'Pendulum-v0'"),
    (["train", "sac", "Pendulum-v1", "--set", "gamma=0.9"], "unknown parameter 'gamma'; valid names: alpha"),
    (["train", "sac", "Pendulum-v1", "--set", "batch_size"], "--set expects key=value"),
    (["train", "sac", "Pendulum-v1", "--steps", "0"], "--steps must be positive"),
    (["eval", "nowhere", "--episodes", "0"], "--episodes must be positive"),
    (["eval", "nowhere"], "nowhere does not exist"),
])
def test_cli_errors_are_one_line_with_choices(args, message, capsys):
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_trains_recurrent_defaults(run_root, capsys):
    """Recurrent options by --set: a default LSTM actor, trained on sequences with burn-in."""
    args = ["train", "sac", "PendulumNoVel-v1", "--steps", "200", "--run-root", str(run_root), "--set",
            "lstm_size=8", "--set", "sequence_length=8", "--set", "burn_in=2", "--set", "batch_size=32",
            "--set", "mini_buffer_size=100", "--set", "hidden_sizes=16", "--set", "display_interval=4",
            "--set", "calculate_episodes=1"]
    assert cli(args) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].strip())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["state_outputs"] == {"lstm_h": [8], "lstm_c": [8]}
    assert cli(["eval", str(run_dir), "--episodes", "1"]) == 0


@pytest.mark.parametrize("algo_name", ["td3", "ppo"])
def test_stored_state_recurrence_works_for_td3_and_ppo(run_root, algo_name):
    """Form 1 with the default LSTM actor: states stored with transitions, zero at episode starts."""
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[algo_name]
    common = dict(n_epochs=4, display_interval=4, calculate_episodes=1, hidden_sizes=(16,), lstm_size=8, seed=1)
    if algo_name == "td3":
        params = algo.Parameters(update_interval=25, batch_size=32, mini_buffer_size=50, **common)
    else:
        params = algo.Parameters(n_envs=2, rollout_length=25, batch_size=10, n_update_epochs=2, **common)
    starter = RLTaskStarter("PendulumNoVel-v1", algo=algo, algo_hyperparameter=params, run_root=run_root,
                            progress=False)
    batch, _ = starter.collector.collect(3, starter.algo.actor_params(starter.state), starter.act_key,
                                         np.random.default_rng(0))
    assert not batch["obs/lstm_h"][0].any() and batch["obs/lstm_h"][1:].any()
    np.testing.assert_array_equal(batch["next_obs/lstm_h"][:2], batch["obs/lstm_h"][1:])
    summary = starter.run()
    assert summary.grad_steps > 0 and np.isfinite(summary.final_eval_return)
