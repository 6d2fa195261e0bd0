"""The training loop and its hooks; read-only evaluation; run folders from config.json."""
import csv
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aquaml import RLTaskStarter, SACParameters
from aquaml.algorithm import LoopParameters
from aquaml.cli import main as cli
from aquaml.starter import Hook, StopOnNonFinite, TrainingLoop
from aquaml.tools.logger import COLUMNS, RunLogger
from helpers import ROOT, assert_resumes_exactly


def small(**kw) -> SACParameters:
    base = dict(n_epochs=6, update_interval=30, update_times=8, batch_size=32, mini_buffer_size=60,
                display_interval=2, calculate_episodes=1, store_model_times=1, hidden_sizes=(16, 16), seed=3)
    return SACParameters(**{**base, **kw})


class Recorder(Hook):
    def __init__(self):
        self.calls, self.rows = [], []

    def on_start(self, loop):
        self.calls.append("start")

    def on_epoch(self, loop):
        self.calls.append("epoch")

    def on_display(self, loop, row):
        self.calls.append("display")
        self.rows.append(dict(row))

    def on_close(self, loop):
        self.calls.append("close")


class Prune(Hook):
    """What a pruner does: end training cleanly when a row says so."""

    def on_display(self, loop, row):
        if row["env_steps"] >= 120:
            loop.request_stop()


class Fail(Hook):
    def on_epoch(self, loop):
        if loop.counters.epoch == 3:
            raise RuntimeError("broken hook")


def test_extra_hooks_see_every_row_after_evaluation_and_can_stop_training(run_root):
    recorder = Recorder()
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(), run_root=run_root, progress=False,
                            hooks=[recorder, Prune()])
    summary = starter.run()
    assert starter.loop.stopped and summary.env_steps == 120 and starter.loop.counters.epoch < starter.params.n_epochs
    assert recorder.calls == ["start", "epoch", "epoch", "display", "epoch", "epoch", "display", "close"]
    assert [r["env_steps"] for r in recorder.rows] == [60, 120]
    assert all("eval_return_mean" in r for r in recorder.rows)  # evaluation runs before user hooks
    cpu = [r["cpu_time_s"] for r in recorder.rows]  # this process's CPU seconds, growing with the run
    assert 0 < cpu[0] <= cpu[1]
    with open(starter.run_dir / "progress.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [60, 120]  # the stopping row is logged
    # the stop makes the epoch the last: the checkpoint hook (after the user's) saves it
    assert starter.run_dir.joinpath("checkpoints", "epoch_00000004").is_dir()
    assert summary.final_eval_return == recorder.rows[-1]["eval_return_mean"]


def test_a_stop_requested_between_displays_ends_the_run_at_that_epoch(run_root):
    class StopAtThree(Hook):
        def on_epoch(self, loop):
            if loop.counters.epoch == 3:
                loop.request_stop()

    recorder = Recorder()
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(overlap=True), run_root=run_root,
                            progress=False, hooks=[recorder, StopAtThree()])
    summary = starter.run()
    assert summary.env_steps == 90 and [r["env_steps"] for r in recorder.rows] == [60, 90]
    assert summary.grad_steps == recorder.rows[-1]["grad_steps"]  # the overlapped update was applied first
    assert starter.run_dir.joinpath("checkpoints", "epoch_00000003").is_dir()


def test_evaluations_come_every_eval_every_env_steps_whatever_the_epoch_length(run_root, tmp_path):
    """Issue 21: short epochs (MuJoCo's one env step each) must not mean an evaluation every few
    epochs. Epochs of 5 env steps with eval_every=72: a display after each epoch that reaches a
    multiple of 72 (at 75, 145, 220, 290 env steps) and none in between; a run stopped at 145 and
    resumed displays at the same steps, with the same evaluations and state."""
    def make(epochs, root):
        params = small(n_epochs=epochs, update_interval=5, update_times=1, mini_buffer_size=20,
                       display_interval=None, eval_every=72)
        return RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=root, progress=False)

    full, _ = assert_resumes_exactly(make, 58, 290, tmp_path)
    assert [steps for steps, _ in full.eval_history] == [75, 145, 220, 290]
    with pytest.raises(ValueError, match=r"give eval_every \(env steps\) or display_interval \(epochs\), not both: "
                                         r"display_interval=2 is 10 env steps, eval_every=72"):
        small(update_interval=5, eval_every=72)


def test_a_hook_that_raises_ends_training_with_its_error(run_root):
    recorder = Recorder()
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(), run_root=run_root, progress=False,
                            hooks=[recorder, Fail()])
    with pytest.raises(RuntimeError, match="broken hook"):
        starter.run()
    assert recorder.calls[-1] == "close" and starter.loop.counters.epoch == 3


class Dataset:
    """An offline learner: batches drawn from fixed arrays, no environment steps."""

    can_overlap = False

    def __init__(self):
        self.x = np.linspace(-1, 1, 64, dtype=np.float32)

    def random_steps(self, env_steps, n_envs):
        return 0

    def prepare(self, data, rng):
        assert data is None  # nothing collected
        return self.x[rng.integers(0, len(self.x), (4, 16))]

    def update(self, state, batches):
        state, metrics = FitMean.update(state, batches)
        return state, metrics, 4

    def checkpoint_files(self):
        return {}

    def restore(self, path):
        pass


class FitMean:
    """A one-parameter 'algorithm': w moves towards the batch means."""

    @staticmethod
    @jax.jit
    def update(w, batches):
        def step(w, b):
            return w + 0.5 * (jnp.mean(b) - w), (jnp.mean(b) - w) ** 2

        w, losses = jax.lax.scan(step, w, batches)
        return w, {"fit_loss": jnp.mean(losses)}

    @staticmethod
    def actor_params(state):
        return state


@dataclass
class OfflineParameters(LoopParameters):
    @property
    def steps_per_env(self) -> int:
        return 0


class TouchStop(Hook):
    """Creates the run's STOP file after epoch 3, as a tuner's pruner does from outside."""

    def on_epoch(self, loop):
        if loop.counters.epoch == 3:
            loop.stop_file.touch()


def test_a_stop_file_ends_training_cleanly_after_the_current_epoch(run_root):
    recorder = Recorder()
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(n_epochs=8, display_interval=4),
                            run_root=run_root, progress=False, hooks=[TouchStop(), recorder])
    summary = starter.run()
    starter.close()
    # epoch 4 notices the file: it becomes the last epoch, with its evaluation row and checkpoint
    assert starter.loop.stopped and starter.loop.counters.epoch == 4 and summary.env_steps == 120
    assert [r["env_steps"] for r in recorder.rows] == [120]
    assert (summary.run_dir / "STOP").exists()
    assert sorted(p.name for p in (summary.run_dir / "checkpoints").glob("epoch_*")) == ["epoch_00000004"]
    resumed = RLTaskStarter.from_run_dir(summary.run_dir, progress=False)  # removes STOP, trains on
    assert resumed.run().env_steps == 240 and not (summary.run_dir / "STOP").exists()
    resumed.close()


def test_the_loop_runs_an_offline_learner_and_restores_exactly():
    params = OfflineParameters(n_epochs=6, display_interval=3)
    recorder = Recorder()
    loop = TrainingLoop(params, FitMean, Dataset(), None, jnp.float32(5.0), jax.random.PRNGKey(0),
                        np.random.default_rng(1), [recorder])
    loop.run()
    assert loop.counters.env_steps == 0 and loop.counters.grad_steps == 24 and loop.counters.epoch == 6
    assert [r["grad_steps"] for r in recorder.rows] == [12, 24]
    assert abs(float(loop.state)) < 0.5 and "fit_loss" in recorder.rows[-1]

    half = TrainingLoop(params.replace(n_epochs=3), FitMean, Dataset(), None, jnp.float32(5.0),
                        jax.random.PRNGKey(0), np.random.default_rng(1))
    half.run()
    arrays, meta = half.state_dict()
    meta = json.loads(json.dumps(meta))  # as stored in meta.json
    resumed = TrainingLoop(params, FitMean, Dataset(), None, jnp.float32(0.0), jax.random.PRNGKey(9),
                           np.random.default_rng(7))
    resumed.load_state_dict(arrays, meta)
    resumed.run()
    assert float(resumed.state) == float(loop.state) and resumed.counters.grad_steps == 24


def test_console_prints_a_line_per_evaluation_off_a_terminal_tables_with_v_and_results_only_with_q(run_root,
                                                                                                  capsys):
    args = ["train", "sac", "Pendulum-v1", "--steps", "100", "--name", "console", "--run-root", str(run_root), "--set",
            "update_interval=30", "--set", "mini_buffer_size=60", "--set", "batch_size=32", "--set",
            "hidden_sizes=16", "--set", "display_interval=2", "--set", "calculate_episodes=1"]
    assert cli(args) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # the rounding said once; one plain line per evaluation (no bar frames: the output is not a terminal)
    assert lines[0] == "--steps 100 is not a whole number of epochs: training runs 120 env steps (4 epochs of 30)"
    assert lines[1].startswith("console | 60/120 env steps | eval return ") and lines[1].endswith(" left")
    assert lines[2].startswith("console | 120/120 env steps | eval return ") and "train return" not in lines[2]
    assert lines[3].startswith("final evaluation return: ") and len(lines) == 5
    assert "\r" not in out + err and "step/s" not in err
    run_dir = Path(lines[4].split("run directory: ")[1])
    assert cli(["train", "sac", "Pendulum-v1", "--resume", str(run_dir), "--steps", "180", "-v"]) == 0
    out = capsys.readouterr().out
    table = out[:out.index("final evaluation return")].splitlines()
    assert table[1].startswith("| console  epoch 6/6") and len({len(line) for line in table}) == 1  # borders fit
    keys = [line.split()[1] for line in table[3:-1]]
    assert keys[:3] == ["env_steps", "grad_steps", "epoch"] and "eval_return_mean" in keys
    assert "policy_lag" not in keys and "train_return_mean" not in keys  # no overlap; no episode has ended
    with open(run_dir / "progress.csv") as f:
        assert {"policy_lag", "train_return_mean"} <= set(next(csv.reader(f)))  # the log keeps every column
    assert cli(["train", "sac", "Pendulum-v1", "--resume", str(run_dir), "--steps", "240", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("final evaluation return: ")


def test_a_table_is_as_wide_as_its_title():
    from aquaml.tools.logger import format_table

    lines = format_table({"a": 1.0, "bb": 2}, "a title longer than the rows").splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[1] == "| a title longer than the rows |"


def test_stop_on_non_finite_names_the_metric():
    class Loop:
        metrics = {"q_loss": 1.0, "actor_loss": float("nan")}

        class counters:
            env_steps = 300

    with pytest.raises(FloatingPointError, match="at env step 300: actor_loss became NaN or infinite"):
        StopOnNonFinite().on_display(Loop(), {})


def test_run_logger_adds_columns_for_new_metrics(tmp_path):
    logger = RunLogger(tmp_path)
    logger.log({"env_steps": 10, "eval_return_mean": 1.0})
    logger.log({"env_steps": 20, "eval_return_mean": 2.0, "my_metric": 0.5})
    logger.close()
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS) and list(rows[0])[-1] == "my_metric"
    assert [r["my_metric"] for r in rows] == ["", "0.5"]
    resumed = RunLogger(tmp_path)  # a resumed run keeps the extended header
    resumed.log({"env_steps": 30, "my_metric": 0.25})
    resumed.close()
    with open(tmp_path / "progress.csv") as f:
        assert [r["my_metric"] for r in csv.DictReader(f)] == ["", "0.5", "0.25"]


def test_logging_and_reading_tensorboard_never_imports_torch(tmp_path):
    """tensorboardX imports an installed torch (3.4 s of every run's start); the logger must not."""
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("IMPORTED = True\n")
    script = (
        "import sys\n"
        "from aquaml.tools.logger import RunLogger\n"
        "from pathlib import Path\n"
        "from aquaml.plot.logs import _scalars\n"
        f"run = Path({str(tmp_path / 'run')!r})\n"
        "logger = RunLogger(run)\n"
        "logger.log({'env_steps': 10, 'eval_return_mean': 1.0})\n"
        "logger.close()\n"
        "assert [s[2:] for s in _scalars(*(run / 'tb').glob('events*'))] == [('eval/eval_return_mean', 1.0)]\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"  # after logging, a user's torch still imports
        "print(torch.IMPORTED)\n"
    )
    (tmp_path / "run").mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])})
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_eval_is_read_only_and_works_on_a_crashed_run(run_root, capsys):
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(episode_length=45), run_root=run_root,
                            progress=False)
    run_dir = starter.run().run_dir
    # a crash after the last log row but before its checkpoint: latest names an older one
    (run_dir / "checkpoints" / "latest").write_text("epoch_00000004")
    before = _digest(run_dir)
    assert cli(["eval", str(run_dir), "--episodes", "2"]) == 0
    assert "evaluation over 2 episodes" in capsys.readouterr().out
    assert _digest(run_dir) == before  # progress.csv not trimmed, nothing written


def test_run_folders_name_only_classes_of_the_expected_kind(run_root, capsys):
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=small(n_epochs=2), run_root=run_root,
                            progress=False)
    run_dir = starter.run().run_dir
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text())
    for path, message in [("collections:OrderedDict", "is not a subclass of keras.src.models.model.Model"),
                          ("os:system", "is a builtin_function_or_method, not a class")]:
        config_path.write_text(json.dumps({**config, "models": {**config["models"], "actor": path}}))
        assert cli(["eval", str(run_dir)]) == 2
        assert message in capsys.readouterr().err
        with pytest.raises(TypeError, match=message):
            RLTaskStarter.from_run_dir(run_dir)
    config_path.write_text(json.dumps({**config, "env": "subprocess:Popen"}))
    assert cli(["eval", str(run_dir)]) == 2
    assert "is not a subclass of aquaml.env.base.RLBaseEnv or gymnasium.core.Env" in capsys.readouterr().err
