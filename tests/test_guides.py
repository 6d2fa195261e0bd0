"""The code of docs/new_algorithm.md (examples/a2c.py) and docs/new_environment.md (examples/point_reach.py).

A user's algorithm, in a file outside the package, trains from Python and the CLI (import
path and entry point) and gets logs, checkpoints, exact resume, workers and MPI from the
starter; a user's environment trains by Gymnasium id and as an RLBaseEnv with a POMDP view.
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters
from aquaml.cli import main as cli
from aquaml.tools.checkpoint import tree_to_arrays
from benchmarks.learning_runs import last_mean

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def a2c_params(**kw):
    from a2c import A2CParameters

    base = dict(n_epochs=6, n_envs=4, rollout_length=8, display_interval=3, calculate_episodes=1,
                store_model_times=1, hidden_sizes=(16,), seed=2)
    return A2CParameters(**{**base, **kw})


@pytest.mark.slow
def test_a2c_learns_cartpole(run_root):
    """A2C written outside the package reaches 475 (of 500) on CartPole within 38k steps."""
    from a2c import A2C

    params = a2c_params(n_epochs=300, n_envs=8, rollout_length=16, learning_rate=7e-4, gae_lambda=0.95,
                        hidden_sizes=(64, 64), display_interval=25, calculate_episodes=5, store_model_times=100,
                        seed=0)
    summary = RLTaskStarter("CartPole-v1", algo=A2C, algo_hyperparameter=params, run_root=run_root,
                            progress=False).run()
    print(summary.eval_history)
    assert max(r for _, r in summary.eval_history) >= 475


def test_a2c_gets_logs_checkpoints_workers_and_exact_resume(run_root):
    from a2c import A2C

    params = a2c_params()
    full = RLTaskStarter("CartPole-v1", algo=A2C, algo_hyperparameter=params, run_root=run_root, name="full",
                         progress=False)
    full_summary = full.run()
    half = RLTaskStarter("CartPole-v1", algo=A2C, algo_hyperparameter=params.replace(n_epochs=3),
                         run_root=run_root, name="half", progress=False, n_workers=2)
    run_dir = half.run().run_dir
    half.close()
    resumed = RLTaskStarter("CartPole-v1", algo=A2C, algo_hyperparameter=params, resume=run_dir, progress=False,
                            n_workers=2)
    resumed_summary = resumed.run()
    resumed.close()
    a, b = tree_to_arrays(full.state), tree_to_arrays(resumed.state)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert full_summary.eval_history == resumed_summary.eval_history
    with open(run_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in rows] == [96, 192]
    assert rows[-1]["value_loss"] and rows[-1]["actor_loss"]  # the algorithm's own metrics are logged
    assert (run_dir / "checkpoints" / "latest").exists() and list((run_dir / "tb").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "a2c" and config["algo_class"] == "a2c:A2C"


def test_a2c_from_the_cli_by_import_path_and_entry_point(run_root, tmp_path, monkeypatch, capsys):
    common = ["CartPole-v1", "--steps", "192", "--run-root", str(run_root), "--set", "n_envs=4", "--set",
              "rollout_length=8", "--set", "display_interval=3", "--set", "calculate_episodes=1"]
    assert cli(["train", "a2c:A2C", *common]) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].strip())
    assert cli(["eval", str(run_dir), "--episodes", "2"]) == 0
    assert "evaluation over 2 episodes" in capsys.readouterr().out
    assert cli(["train", "a2c:A2C", "CartPole-v1", "--resume", str(run_dir), "--steps", "288"]) == 0
    capsys.readouterr()

    # an installed package registers its algorithm under the aquaml.algorithms entry point group
    dist = tmp_path / "site" / "my_algos-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-algos\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aquaml.algorithms]\nmy-a2c = a2c:A2C\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert cli(["train", "my-a2c", *common]) == 0
    assert "final evaluation return" in capsys.readouterr().out


def test_algorithm_classes_are_checked_before_anything_is_built(run_root, capsys):
    class NotAnAlgorithm:
        name = "x"

    with pytest.raises(TypeError, match=r"NotAnAlgorithm is not an AquaML algorithm: it lacks Parameters, critic_roles, "
                                        r".*model_params, kind \(or feeder\)"):
        RLTaskStarter("CartPole-v1", algo=NotAnAlgorithm, run_root=run_root)
    assert cli(["train", "collections:OrderedDict", "CartPole-v1"]) == 2
    assert "OrderedDict is not an AquaML algorithm" in capsys.readouterr().err
    assert cli(["train", "no_such_module:Algo", "CartPole-v1"]) == 2
    assert "cannot import module 'no_such_module'" in capsys.readouterr().err


@pytest.mark.parametrize("member", ["critic_uses_action", "discrete_actions", "default_log_std_head", "random_action",
                                    "prepare_rollout", "actor_params"])
def test_an_algorithm_missing_any_member_is_named_before_anything_is_built(member, run_root, capsys):
    """Every member the loop or the builder reads is checked up front: before, a class without
    e.g. ``critic_uses_action`` got past the check and died with an AttributeError in the builder."""
    from a2c import A2C

    incomplete = type("Incomplete", (), {k: v for k, v in vars(A2C).items() if k != member})
    with pytest.raises(TypeError, match=rf"Incomplete is not an AquaML algorithm: it lacks {member} "):
        RLTaskStarter("CartPole-v1", algo=incomplete, algo_hyperparameter=a2c_params(), run_root=run_root)
    assert not run_root.exists()  # refused before a run folder was made


def test_an_algorithm_whose_init_sets_no_grad_steps_is_refused_after_construction(run_root):
    from a2c import A2C

    class Forgetful(A2C):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            del self.grad_steps_per_update

    with pytest.raises(TypeError, match="Forgetful is not an AquaML algorithm: it lacks grad_steps_per_update"):
        RLTaskStarter("CartPole-v1", algo=Forgetful, algo_hyperparameter=a2c_params(), run_root=run_root)


def test_a2c_under_mpirun(tmp_path):
    """The user's algorithm under mpirun -n 3: rank 0 learns, two sampler ranks step the envs."""
    from helpers import MPIRUN, mpirun, summary_line

    if MPIRUN is None:
        pytest.skip("needs mpirun (pip install 'aquaml[mpi]')")
    script = tmp_path / "train_a2c.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "from mpi4py import MPI\n"
        "from aquaml import RLTaskStarter\n"
        "from a2c import A2C, A2CParameters\n"
        "params = A2CParameters(n_epochs=4, n_envs=4, rollout_length=8, display_interval=2, calculate_episodes=1)\n"
        "s = RLTaskStarter('CartPole-v1', algo=A2C, algo_hyperparameter=params, mpi_comm=MPI.COMM_WORLD,\n"
        f"                  run_root={str(tmp_path / 'runs')!r}, progress=False).run()\n"
        "if s is not None:\n"
        "    print(json.dumps({'steps': s.env_steps, 'grad_steps': s.grad_steps}), flush=True)\n")
    result, _ = mpirun([script], timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary_line(result.stdout) == {"steps": 128, "grad_steps": 4}


def test_point_reach_trains_by_gymnasium_id_from_the_cli(run_root, capsys):
    args = ["train", "sac", "point_reach:PointReach-v0", "--steps", "200", "--run-root", str(run_root), "--set",
            "mini_buffer_size=100", "--set", "batch_size=32", "--set", "display_interval=2", "--set",
            "calculate_episodes=1", "--set", "update_interval=50"]
    assert cli(args) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].strip())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env"] == "point_reach:PointReach-v0" and config["episode_length"] == 100
    assert set(config["obs_info"]["names"]) == {"pos", "vel", "goal"}  # the Dict keys became named observations
    assert cli(["eval", str(run_dir), "--episodes", "1"]) == 0


TINY_SAC = ["--set", "mini_buffer_size=100", "--set", "batch_size=32", "--set", "display_interval=2", "--set",
            "calculate_episodes=1", "--set", "update_interval=50"]


def test_modules_and_files_are_found_from_the_current_directory_and_recorded_for_anywhere(
        run_root, tmp_path, monkeypatch, capsys):
    """docs/new_environment.md and docs/new_algorithm.md as printed from the repository root
    (``path/to/file.py:Id``) and from a module's folder (``module:Id``, as ``python -m`` finds it);
    the run folder records the files' absolute paths, so eval, collect and --resume work elsewhere."""
    from aquaml.env import make_env
    from aquaml.tools import imports

    monkeypatch.setattr(imports, "_LOCAL", {})
    monkeypatch.setattr("sys.path", list(__import__("sys").path))

    def train(*argv):
        assert cli(["train", *argv, "--run-root", str(run_root)]) == 0, capsys.readouterr().err
        run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].strip())
        return run_dir, json.loads((run_dir / "config.json").read_text())

    monkeypatch.chdir(EXAMPLES.parent)
    reach, config = train("sac", "examples/point_reach.py:PointReach-v0", "--steps", "100", *TINY_SAC)
    assert config["env"] == f"{EXAMPLES / 'point_reach.py'}:PointReach-v0"
    a2c, config = train("examples/a2c.py:A2C", "CartPole-v1", "--steps", "64", "--set", "n_envs=4", "--set",
                        "rollout_length=8", "--set", "calculate_episodes=1")
    assert config["algo_class"] == f"{EXAMPLES / 'a2c.py'}:A2C"

    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "here_reach.py").write_text(
        "import gymnasium\ngymnasium.register('HereReach-v0', max_episode_steps=20,\n"
        "                   entry_point='gymnasium.envs.classic_control.pendulum:PendulumEnv')\n")
    monkeypatch.chdir(tmp_path / "envs")  # not on sys.path: found as python -m finds modules
    _, config = train("sac", "here_reach:HereReach-v0", "--steps", "40", *TINY_SAC)
    assert config["env"] == f"{tmp_path / 'envs' / 'here_reach.py'}:HereReach-v0"

    monkeypatch.chdir(tmp_path)  # somewhere else
    make_env(config["env"]).close()
    assert cli(["eval", str(reach), "--episodes", "1"]) == 0
    assert cli(["collect", str(reach), "--episodes", "1", "--out", str(tmp_path / "reach.npz")]) == 0
    assert cli(["train", str(EXAMPLES / "a2c.py") + ":A2C", "CartPole-v1", "--resume", str(a2c), "--steps",
                "96"]) == 0
    capsys.readouterr()
    assert cli(["train", "sac", "not_here:Reach-v0", "--steps", "40"]) == 2
    err = capsys.readouterr().err
    assert "cannot import module 'not_here'" in err and f"not in the current directory {tmp_path}" in err


def test_point_reach_env_contract_and_termination():
    from point_reach import PointReachEnv

    from aquaml.env import EnvDriver

    driver = EnvDriver(PointReachEnv(), episode_length=100)
    obs = driver.reset(seed=3)
    assert obs["obs"].shape == (1, 6) and obs["pos"].shape == (1, 4)
    np.testing.assert_array_equal(obs["pos"], obs["obs"][:, [0, 1, 4, 5]])
    env = driver.env.env
    env.pos = env.goal.copy() + 0.01
    env.vel[:] = 0
    result = driver.step({"action": np.zeros((1, 2), np.float32)})
    assert result.terminated and not result.truncated  # reaching the goal is a real end


@pytest.mark.slow
def test_pomdp_actor_on_point_reach_learns(run_root):
    """SAC with an actor reading only the 'pos' view and default critics reading 'obs'."""
    from point_reach import PointReachEnv, PositionActor

    params = SACParameters(n_epochs=80, update_interval=50, mini_buffer_size=500, display_interval=10,
                           calculate_episodes=10, seed=1)
    starter = RLTaskStarter(PointReachEnv(), {"actor": PositionActor}, algo_hyperparameter=params,
                            run_root=run_root, progress=False)
    before = float(np.mean(starter.evaluate(10)[0]))
    summary = starter.run()
    print(before, summary.eval_history)
    assert before < -60 and last_mean(summary, 2) > -35
    config = json.loads((summary.run_dir / "config.json").read_text())
    assert config["models"]["actor"] == "point_reach:PositionActor" and config["models"]["qf1"] == "default"
