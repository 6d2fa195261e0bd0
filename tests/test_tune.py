"""Tuning (aquaml tune): search spaces, bad input before any trial, trials as ordinary runs,
pruning through the run's STOP file, failures with their error text, the trial cap with two
workers, and a best command that rebuilds the best configuration."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from aquaml.algorithm import ALGORITHMS  # noqa: E402
from aquaml.cli import main  # noqa: E402
from aquaml.tune import DEFAULT_SPACES, SpaceError, TuneConfig, default_space, parse_space  # noqa: E402
from aquaml.tune.study import default_assignment  # noqa: E402
from aquaml.tune.trial import aggregate, run_trial  # noqa: E402
from helpers import wait_until  # noqa: E402

SMALL = {"update_interval": "50", "mini_buffer_size": "100", "display_interval": "2", "calculate_episodes": "1",
         "hidden_sizes": "16"}
SPACE = {"learning_rate": {"type": "log_float", "low": 1e-4, "high": 3e-3},
         "batch_size": {"type": "categorical", "choices": [32, 64]}}


def test_every_default_space_parses_and_holds_its_algorithms_defaults():
    for name in DEFAULT_SPACES:
        algo = ALGORITHMS[name]
        space = default_space(algo)
        cfg = TuneConfig(name, "Pendulum-v1", 1, 10**6, space={k: d.to_dict() for k, d in space.items()})
        inside, texts = default_assignment(cfg, space)
        assert set(inside) == set(space) == set(texts), f"{name}: defaults outside the space: {set(space) - set(inside)}"


@pytest.mark.parametrize("spec, message", [
    ({}, "the search space is empty"),
    ({"learning_rat": {"type": "float", "low": 0, "high": 1}}, "unknown parameter 'learning_rat' for SACParameters"),
    ({"tau": {"type": "uniform", "low": 0, "high": 1}}, "'tau' needs a type, one of float, log_float"),
    ({"tau": {"type": "float", "low": 0.5, "high": 0.1}}, "'tau' needs low < high"),
    ({"tau": {"type": "log_float", "low": 0.0, "high": 0.1}}, "so low must be positive"),
    ({"batch_size": {"type": "categorical", "choices": []}}, "needs a non-empty list of choices"),
    ({"hidden_sizes": {"type": "categorical", "choices": [[64, 64]]}}, "write \\[64, 64\\] as a string"),
])
def test_bad_spaces_name_the_culprit(spec, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(spec, ALGORITHMS["sac"].Parameters)


@pytest.mark.parametrize("argv, message", [
    (["--sampler", "grid"], "unknown sampler 'grid'; use one of tpe, random, cmaes, qmc"),
    (["--pruner", "early"], "unknown pruner 'early'"),
    (["--budget", "20"], "--budget 20 is below one epoch of sac \\(50 steps\\)"),
    (["--set", "learning_rate=0.1"], "learning_rate both searched and fixed by --set"),
    (["--space", "missing.yaml"], "search space file missing.yaml does not exist"),
    (["--set", "batch_sise=3"], "unknown parameter 'batch_sise'"),
])
def test_bad_tuning_input_fails_before_any_trial(argv, message, tmp_path, capsys):
    base = ["tune", "sac", "Pendulum-v1", "--trials", "2", "--budget", "600", "--out", str(tmp_path / "study"),
            "--set", "update_interval=50"]
    if "--budget" in argv:
        base = base[:5] + base[7:]
    assert main(base + argv) == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(message)
    assert not (tmp_path / "study" / "runs").exists()  # no trial started


def test_an_objective_that_no_run_logs_stops_the_study_and_a_tuner_with_other_settings_cannot_join(tmp_path, capsys):
    import optuna

    import yaml

    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "4", "--budget", "600", "--out", str(out), "--pruner", "none",
            "--space", str(space), "--objective", "eval_retrun_mean",
            *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no objective column 'eval_retrun_mean'" in err and "eval_return_mean" in err
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    trials = optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials
    assert len(trials) == 1 and trials[0].state.name == "FAIL"
    # a tuner joining the study with other settings is refused before it runs anything
    argv[argv.index("--budget") + 1] = "1200"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "was started with other settings (budget: 600 in the study, 1200 given)" in err
    assert len(optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials) == 1


def test_tunes_iqm_over_seeds_is_plots_iqm(tmp_path):
    """One IQM in the package: aquaml.plot.stats's (rliable's 25 % trimmed mean), also over a trial's seeds."""
    from aquaml.plot import stats

    rng = np.random.default_rng(0)
    for n in range(1, 10):
        values = list(rng.normal(size=n) * 10)
        assert aggregate(values, "iqm") == stats.iqm(np.asarray(values)[:, None])
    values = [5.0, 1.0, 3.0, 100.0, 2.0, 4.0, -50.0, 6.0]
    np.testing.assert_allclose(aggregate(values, "iqm"), np.mean(np.sort(values)[2:6]))
    assert aggregate(values, "mean") == np.mean(values)
    # a trial of five seeds (where a weighted IQM would give 4.1) aggregates them with plot's IQM
    seed_values = {0: 0.0, 1: 1.0, 2: 5.0, 3: 6.0, 4: 100.0}
    outcome = run_trial("ppo", "CartPole-v1", 2560, list(seed_values), FAST_PPO, tmp_path / "trial",
                        lambda value, step: False, how="iqm",
                        process=fake_process(lambda sets, seed, steps: seed_values[seed])())
    assert outcome.state == "complete" and outcome.seed_values == list(seed_values.values())
    assert outcome.value == stats.iqm(np.array(outcome.seed_values)[:, None]) == 4.0


def test_a_pruned_trial_stops_early_and_leaves_a_complete_run_folder(tmp_path):
    reports = []

    def report(value, step):
        reports.append((value, step))
        return True  # prune at the first evaluation

    outcome = run_trial("sac", "Pendulum-v1", 4000, [0], SMALL, tmp_path / "trial", report)
    assert outcome.state == "pruned" and reports[0][1] == 1  # the first report point: 400 steps
    run_dir = Path(outcome.run_dirs[0])
    # the run stopped well before its budget (the tuner polls, so a few more epochs may pass first),
    # with the final evaluation of the epoch that saw STOP
    progress = (run_dir / "progress.csv").read_text().splitlines()
    last_steps = int(progress[-1].split(",")[progress[0].split(",").index("env_steps")])
    assert len(progress) >= 3 and last_steps < 4000
    assert json.loads((run_dir / "trial.json").read_text())["state"] == "pruned"
    assert (run_dir / "STOP").exists() and sorted(run_dir.glob("checkpoints/epoch_*/state.npz"))


def test_a_crashing_trial_fails_with_its_error_text(tmp_path):
    outcome = run_trial("sac", "Pendulum-v1", 600, [0], {**SMALL, "tau": "2.0"}, tmp_path / "trial",
                        lambda value, step: False)
    assert outcome.state == "fail" and "tau must lie in (0, 1]" in outcome.error


def _evaluations(run_dir) -> list[str]:
    import csv

    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return [row["eval_return_mean"] for row in csv.DictReader(f)]


def test_a_run_in_a_warm_trial_process_trains_exactly_as_a_fresh_run(tmp_path):
    """Trials share one process per worker; what an earlier trial leaves behind (Keras names,
    seed generators, compiled functions) must not change a later one."""
    from aquaml.tune.process import TrialProcess

    other = {**SMALL, "learning_rate": "0.002", "hidden_sizes": "32"}
    with TrialProcess() as process:
        first = run_trial("sac", "Pendulum-v1", 600, [3], other, tmp_path / "a", lambda v, s: False, process=process)
        second = run_trial("sac", "Pendulum-v1", 600, [0], SMALL, tmp_path / "b", lambda v, s: False, process=process)
        pid = process._proc.pid
        third = run_trial("sac", "Pendulum-v1", 600, [1], SMALL, tmp_path / "c", lambda v, s: False, process=process)
        assert process._proc.pid == pid  # the same process ran them
    assert first.state == second.state == third.state == "complete"
    subprocess.run([sys.executable, "-m", "aquaml.cli", "train", "sac", "Pendulum-v1", "--steps", "600", "--seed", "0",
                    *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), []), "--run-root", str(tmp_path / "fresh"),
                    "--name", "fresh"], check=True, capture_output=True)
    fresh = next((tmp_path / "fresh" / "fresh").iterdir())
    assert _evaluations(second.run_dirs[0]) == _evaluations(fresh) and len(_evaluations(fresh)) == 6
    a = np.load(sorted(Path(second.run_dirs[0]).glob("checkpoints/epoch_*"))[-1] / "state.npz")
    b = np.load(sorted(fresh.glob("checkpoints/epoch_*"))[-1] / "state.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def _exit_status(process, timeout: float = 60) -> int:
    """The exit status of the run in a ``TrialProcess``, polled until the run has ended."""
    return wait_until(lambda: (code := process.poll()) is not None and [code], timeout, message="the run's end")[0]


def test_a_trial_process_that_dies_fails_its_run_and_is_restarted(tmp_path):
    import signal

    from aquaml.tune.process import TrialProcess

    argv = ["train", "sac", "Pendulum-v1", "--steps", "100000", "--run-root", str(tmp_path), "--name", "long",
            *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    with TrialProcess() as process:
        process.start(argv, tmp_path / "long.log")
        # the kill must hit a run that trains: it has logged its first evaluation and not ended
        wait_until(lambda: list(tmp_path.glob("long/*/progress.csv")), 180, 0.2, "the run's first evaluation")
        assert process.poll() is None, (tmp_path / "long.log").read_text()[-2000:]
        os.kill(process._proc.pid, signal.SIGKILL)
        assert _exit_status(process) == -signal.SIGKILL
        assert "trial process died with exit status -9 (SIGKILL)" in (tmp_path / "long.log").read_text()
        process.start(["train", "sac", "Nope-v0"], tmp_path / "bad.log")  # a fresh process takes the next run
        assert _exit_status(process) == 2 and "Nope-v0" in (tmp_path / "bad.log").read_text()


@pytest.mark.slow
def test_a_study_with_two_workers_stops_at_the_trial_cap_and_its_best_command_rebuilds_the_run(tmp_path, monkeypatch):
    import optuna
    import yaml

    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "4", "--budget", "400", "--workers", "2", "--out", str(out),
            "--space", str(space), *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    def load():
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
        return optuna.load_study(study_name="sac_Pendulum-v1", storage=storage)

    assert main(argv) == 0
    study = load()
    assert len(study.trials) == 4
    first = study.trials[0]
    assert first.user_attrs["default"] and first.user_attrs["assignments"]["batch_size"] == "256"  # the default
    assert first.params == {"learning_rate": 1e-3}  # in-space defaults reach the sampler; 256 lies outside
    assert main(argv) == 0 and len(load().trials) == 4  # a second tuner on the full study adds none
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 5
    report = (out / "report.md").read_text()
    assert "| 1 |" in report and "(default)" in report and "optuna-dashboard" in report
    assert {p.name for p in (out / "plots").glob("*.png")} >= {"optimization_history.png", "intermediate_values.png"}
    best = yaml.safe_load((out / "best.yaml").read_text())
    best_run = Path(study.trials[best["trial"]].user_attrs["run_dirs"][0])
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # this environment's aquaml
    result = subprocess.run(["/bin/sh", str(out / "best_command.sh"), "--run-root", str(tmp_path / "again")],
                            capture_output=True, text=True, env={**os.environ, "PATH": path})
    assert result.returncode == 0, result.stderr[-2000:]
    again = next((tmp_path / "again").glob("*/*/config.json"))
    assert json.loads(again.read_text())["parameters"] == json.loads((best_run / "config.json").read_text())["parameters"]
    # the best configuration and the default again, on fresh seeds (the folder given relative to elsewhere)
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "confirm", "study", "--top", "1", "--seeds", "1"]) == 0
    confirmation = (out / "confirm.md").read_text()
    assert "Seeds 1000..1000" in confirmation and f"| {best['trial']}" in confirmation
    assert sorted((out / "confirm").glob("trial_*/seed1000/*/trial.json"))


FAST_PPO = {"n_envs": "2", "batch_size": "64", "display_interval": "2", "calculate_episodes": "1"}


class FakeProcess:
    """A trial process whose runs end at once, each with the ``progress.csv`` its real run would
    log: an evaluation row at every ``display_interval`` epochs and at the last one (the steps its
    parameters give), the objective ``curve(sets, seed, env_steps)``."""

    curve = staticmethod(lambda sets, seed, steps: 0.0)

    def __init__(self, env_vars=None, cpus=None):
        self.code = None

    def start(self, argv, log):
        from aquaml.algorithm.parameters import epochs_for
        from aquaml.algorithm.registry import resolve_algorithm

        algo, budget, seed = argv[1], int(argv[argv.index("--steps") + 1]), int(argv[argv.index("--seed") + 1])
        sets = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--set")
        params = resolve_algorithm(algo).Parameters().with_strings(sets)
        epoch, epochs = params.steps_per_env * params.n_envs, epochs_for(params, budget)
        root = Path(argv[argv.index("--run-root") + 1]) / argv[argv.index("--name") + 1]
        run_dir = root / f"run{len(list(root.glob('*')))}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text("{}")
        rows = ["env_steps,grad_steps,eval_return_mean"]
        rows += [f"{e * epoch},{e},{self.curve(sets, seed, e * epoch)}" for e in range(1, epochs + 1)
                 if e % params.display_interval == 0 or e == epochs]
        (run_dir / "progress.csv").write_text("\n".join(rows) + "\n")
        Path(log).write_text("")
        self.code = 0

    def poll(self):
        return self.code

    def kill(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def fake_process(curve):
    return type("Fake", (FakeProcess,), {"curve": staticmethod(curve)})


def _journal_study(out: Path, name: str):
    import optuna

    out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    return optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)


def _ppo_study_with_a_bad_trial(tmp_path, bad_rollout: str):
    """``aquaml tune ppo CartPole-v1`` argv (median pruning, budget 2560) on a study that holds two good
    queued trials (rollout_length 128, learning rate 3e-3 and 1e-3) and then a bad one (learning
    rate 1e-7, rollout_length ``bad_rollout``): the evaluation grids differ."""
    import yaml

    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"learning_rate": {"type": "categorical", "choices": [0.003, 0.001, 1e-7]},
                                     "rollout_length": {"type": "categorical", "choices": [64, 128]}}))
    study = _journal_study(out, "ppo_CartPole-v1")
    for lr, rollout in ((0.003, 128), (0.001, 128), (1e-7, int(bad_rollout))):
        study.enqueue_trial({"learning_rate": lr, "rollout_length": rollout})
    return out, ["tune", "ppo", "CartPole-v1", "--trials", "3", "--budget", "2560", "--out", str(out), "--space",
                 str(space), "--pruner", "median", *sum((["--set", f"{k}={v}"] for k, v in FAST_PPO.items()), [])]


def _judged_reports(out: Path):
    """The trials of the study in ``out``, and how many reports of the third (the bad one) lie at or
    past the median pruner's warm-up."""
    from aquaml.tune.study import load_config, open_study

    study = open_study(load_config(out))  # with the tuner's pruner
    trials = sorted(study.trials, key=lambda t: t.number)[:3]
    warm_up = study.pruner._n_warmup_steps
    return trials, [step for step in trials[2].intermediate_values if step >= warm_up]


def _mocked_ppo_study(tmp_path, monkeypatch, bad_rollout: str):
    """The study of ``_ppo_study_with_a_bad_trial`` on mocked curves: the bad trial (learning rate
    below 1e-5) stays at 10, the others climb from 20 to 220 over the budget."""
    out, argv = _ppo_study_with_a_bad_trial(tmp_path, bad_rollout)
    curve = lambda sets, seed, steps: 10.0 if float(sets["learning_rate"]) < 1e-5 else 20 + 200 * steps / 2560
    monkeypatch.setattr("aquaml.tune.study.TrialProcess", fake_process(curve))
    assert main(argv) == 0
    return _judged_reports(out)


def test_a_bad_ppo_trial_is_pruned_at_its_first_report_past_the_warm_up_whatever_its_evaluation_grid(
        tmp_path, monkeypatch):
    """The good trials evaluate every 512 env steps (rollout_length 128), the bad one every 256
    (rollout_length 64): on the shared report grid the pruner compares them at its first report
    past the warm-up, and prunes it there."""
    trials, judged = _mocked_ppo_study(tmp_path, monkeypatch, "64")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert len(judged) == 1, f"pruned at its report number {len(judged)} past the warm-up"


def test_no_trial_is_judged_on_an_evaluation_from_the_first_quarter_of_its_run(tmp_path, monkeypatch):
    """Evaluations every 512 steps of 2560: the third report point (768 steps) still holds the
    evaluation at 512 (20 %), so the bad trial is judged first at the fourth (1024 steps)."""
    trials, _ = _mocked_ppo_study(tmp_path, monkeypatch, "128")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert trials[2].intermediate_values == {2: 10.0, 3: 10.0, 4: 10.0}


def test_a_bad_ppo_trial_of_real_runs_is_pruned_at_its_first_report_past_the_warm_up(tmp_path):
    """The same with real PPO runs on CartPole (learning rate 1e-7 against 3e-3 and 1e-3) and
    Optuna's median pruner: the bad run stops well before its budget."""
    import csv

    out, argv = _ppo_study_with_a_bad_trial(tmp_path, "64")
    assert main(argv) == 0
    trials, judged = _judged_reports(out)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"], [t.intermediate_values for t in trials]
    assert len(judged) == 1, [t.intermediate_values for t in trials]
    with open(Path(trials[2].user_attrs["run_dirs"][0]) / "progress.csv", newline="") as f:
        # pruned at its first judged report (above); the stop reaches the trial process while it trains on, so
        # how far it got depends on the machine's load (1,920 of 2,560 steps beside another test process)
        assert int(list(csv.DictReader(f))[-1]["env_steps"]) < 2560


def test_seeds_report_on_one_grid_of_budget_fractions_aggregated_per_point(tmp_path, monkeypatch):
    """Budget 2500, PPO's epoch of 256 steps, an evaluation every 512 steps and at the 10th epoch
    (2560 steps: rounded up). Each point of the grid (250, 500, ..., 2500 steps) holds the latest
    evaluation at or before it (the final one at 2500), averaged over the two seeds."""
    out = tmp_path / "study"
    monkeypatch.setattr("aquaml.tune.study.TrialProcess", fake_process(lambda sets, seed, steps: steps + 1000 * seed))
    argv = ["tune", "ppo", "CartPole-v1", "--trials", "1", "--budget", "2500", "--seeds", "2", "--out", str(out),
            "--space", str(_space_file(tmp_path, {"learning_rate": SPACE["learning_rate"]})),
            *sum((["--set", f"{k}={v}"] for k, v in FAST_PPO.items()), [])]
    assert main(argv) == 0
    trial = _journal_study(out, "ppo_CartPole-v1").trials[0]
    latest = {3: 512, 4: 512, 5: 1024, 6: 1024, 7: 1536, 8: 1536, 9: 2048, 10: 2560}
    assert trial.intermediate_values == {point: steps + 500.0 for point, steps in latest.items()}
    assert trial.value == np.mean([(1536 + 2048 + 2560) / 3 + 1000 * seed for seed in (0, 1)])


@pytest.mark.parametrize("pruner", ["median", "halving", "hyperband"])
def test_pruners_judge_on_the_report_grid_past_the_warm_up(pruner, tmp_path):
    """Ten report points; none is judged before the first past the first quarter (the third), and
    Hyperband's and successive halving's rungs lie on the grid from there."""
    import optuna

    from aquaml.tune.study import open_study

    cfg = TuneConfig("ppo", "CartPole-v1", 4, 100_000, folder=str(tmp_path / "study"), pruner=pruner)
    p = open_study(cfg).pruner
    if pruner == "median":
        assert isinstance(p, optuna.pruners.MedianPruner) and p._n_warmup_steps == 3
    elif pruner == "halving":
        assert p._min_resource == 3 and p._min_resource * p._reduction_factor <= 10
    else:
        assert p._min_resource == 3 and p._max_resource == 10


def test_a_requeued_default_trial_still_suggests_its_in_space_values(tmp_path, monkeypatch):
    """The default trial's tuner died; its rerun is still the default, and the sampler still learns
    from it (its in-space values are its parameters)."""
    import time

    from aquaml.tune import tune
    from aquaml.tune.study import check_config, default_assignment, machine_id

    cfg = TuneConfig("sac", "Pendulum-v1", 1, 400, folder=str(tmp_path / "study"), pruner="none", sets=SMALL,
                     space=SPACE)
    space = check_config(cfg)
    study = _journal_study(cfg.path, cfg.study)
    study.set_user_attr("config", json.loads(json.dumps(cfg.__dict__)))
    inside, texts = default_assignment(cfg, space)
    study.enqueue_trial(inside, user_attrs={"default": True, "default_assignments": texts,
                                            "default_inside": sorted(inside)})
    dead = study.ask()  # the default, as its tuner ran it until it was killed
    space["learning_rate"].suggest(dead)
    dead.set_user_attr("tuner", {"machine": "elsewhere", "pid": 1})
    dead.set_user_attr("heartbeat", time.time() - 3600)
    assert dead.params == {"learning_rate": 1e-3} and machine_id() != "elsewhere"
    monkeypatch.setattr("aquaml.tune.study.TrialProcess", fake_process(lambda sets, seed, steps: -steps))
    trials = tune(cfg, log=lambda line: None).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[0].user_attrs["requeued"]
    rerun = trials[1]
    assert rerun.user_attrs["default"] and rerun.user_attrs.get("default_inside") == ["learning_rate"]
    assert rerun.params == {"learning_rate": 1e-3}  # it reached the sampler again


SECRET = "s3cr3t-Pa55"


def _files_holding(folder: Path, text: str) -> list[str]:
    return [str(f) for f in folder.rglob("*") if f.is_file() and text.encode() in f.read_bytes()]


def test_a_database_password_is_never_written_nor_shown(tmp_path, monkeypatch, capsys):
    """``--storage postgresql://user:PASSWORD@host/db``: the study folder, the study's attributes and
    the output hold the URL without its password, and the tuner still connects with it."""
    from contextlib import nullcontext

    url = f"postgresql+psycopg2://tuner:{SECRET}@db.example:5432/optuna"
    opened = []

    def open_study(cfg):  # the database, as a journal file beside the study folder
        opened.append(cfg.storage)
        return _journal_study(tmp_path / "db", cfg.study)

    monkeypatch.setattr("aquaml.tune.study.open_study", open_study)
    monkeypatch.setattr("aquaml.tune.study.study_lock", lambda cfg: nullcontext())
    monkeypatch.setattr("aquaml.tune.study.TrialProcess", fake_process(lambda sets, seed, steps: steps / 100))
    out = tmp_path / "study"
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "2", "--budget", "400", "--out", str(out), "--space",
            str(_space_file(tmp_path)), "--storage", url, *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    assert main(argv) == 0
    study = _journal_study(tmp_path / "db", "sac_Pendulum-v1")
    assert len(study.trials) == 2 and (out / "report.md").exists() and (out / "best_command.sh").exists()
    assert not _files_holding(out, SECRET)
    assert SECRET not in json.dumps([study.user_attrs, *[t.user_attrs for t in study.trials]])
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    stored = json.loads((out / "study.json").read_text())["storage"]
    assert stored == "postgresql+psycopg2://tuner@db.example:5432/optuna"
    from aquaml.tune.storage import connect_url, mask

    assert opened and all(connect_url(stored) == url for stored in opened)  # the tuner connects with it
    assert mask(f"failed: {url}") == "failed: postgresql+psycopg2://tuner:***@db.example:5432/optuna"
    # a later command gives the password again on its own command line, for the same database only
    assert main(["tune", "resume", str(out), "--storage", url]) == 0 and not _files_holding(out, SECRET)
    assert main(["tune", "resume", str(out), "--storage", url.replace("optuna", "other")]) == 2
    err = capsys.readouterr().err
    assert "is not the study's storage" in err and "tuner:***@" in err and SECRET not in err


def test_a_database_that_cannot_be_reached_fails_in_one_line_without_the_password(tmp_path, capsys):
    pytest.importorskip("psycopg2")
    url = f"postgresql+psycopg2://tuner:{SECRET}@127.0.0.1:1/optuna?connect_timeout=5"
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "2", "--budget", "600", "--out", str(tmp_path / "study"),
            "--storage", url, "--set", "update_interval=50"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "tuner:***@127.0.0.1:1/optuna" in err and SECRET not in err and len(err.strip().splitlines()) == 1
    assert not _files_holding(tmp_path, SECRET)


def _space_file(tmp_path, spec: dict = SPACE) -> Path:
    import yaml

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(spec))
    return space


def test_tune_lists_its_subcommands_and_each_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["tune", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "aquaml tune ALGO ENV" in out
    assert all(f"aquaml tune {name} STUDY_DIR" in out for name in ("resume", "best", "confirm"))
    for name, option in (("resume", "--workers"), ("best", "study_dir"), ("confirm", "--top")):
        with pytest.raises(SystemExit) as e:
            main(["tune", name, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and out.startswith(f"usage: aquaml tune {name} ") and option in out
    assert main(["tune", "best", "nowhere"]) == 2
    assert "nowhere holds no best.yaml" in capsys.readouterr().err


def _descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children, their children, ...)."""
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(pid)
        except OSError:
            pass
    return alive


def default_sigint() -> None:
    """Ctrl-C's default action in the child (a shell's background job starts with SIGINT ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tuner_with_a_running_trial(tmp_path, trials: int, stderr=subprocess.DEVNULL):
    """``aquaml tune`` in its own process, once its first trial trains: ``(tuner, study folder,
    the tuner's descendant processes)``."""
    import yaml

    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    cmd = [sys.executable, "-m", "aquaml.cli", "tune", "sac", "Pendulum-v1", "--trials", str(trials), "--budget",
           "1500", "--out", str(out), "--space", str(space), "--pruner", "none",
           *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    tuner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, text=True, preexec_fn=default_sigint)
    wait_until(lambda: list((out / "runs").glob("trial_0000/seed0/*/progress.csv")), 180, 0.2,
               "the first trial's first evaluation")
    processes = _descendants(tuner.pid)
    assert tuner.poll() is None and _alive(processes), "the first trial is not running"
    return tuner, out, processes


def test_resume_after_a_killed_tuner_requeues_its_trial_and_leaves_no_orphan(tmp_path):
    import signal

    import optuna

    tuner, out, trial_processes = _tuner_with_a_running_trial(tmp_path, 3)
    tuner.send_signal(signal.SIGKILL)
    tuner.wait()
    wait_until(lambda: not _alive(trial_processes), 60, message="a trial process outlived its tuner")
    assert main(["tune", "resume", str(out)]) == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    trials = optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states
    requeued = [t for t in trials if t.user_attrs.get("requeued")]
    assert len(requeued) == 1 and requeued[0].state.name == "FAIL" and "its tuner stopped" in requeued[0].user_attrs["error"]
    counted = [t for t in trials if not t.user_attrs.get("requeued")]
    assert len(counted) == 3 and all(t.state.name == "COMPLETE" for t in counted)
    # the killed trial was the default configuration: it ran again, still marked as the default
    assert sum(bool(t.user_attrs.get("default")) for t in counted) == 1


def test_ctrl_c_stops_the_tuner_and_its_trials_and_resume_reruns_the_interrupted_trial(tmp_path):
    import signal

    import optuna

    tuner, out, trial_processes = _tuner_with_a_running_trial(tmp_path, 2, stderr=subprocess.PIPE)
    tuner.send_signal(signal.SIGINT)
    _, err = tuner.communicate(timeout=60)
    assert tuner.returncode == 130 and "interrupted" in err and "aquaml tune resume" in err
    wait_until(lambda: not _alive(trial_processes), 60, message="a trial process outlived Ctrl-C")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal.log")))
    trials = optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials
    assert [t.state.name for t in trials] == ["RUNNING"]  # not FAIL: its configuration did nothing wrong
    assert main(["tune", "resume", str(out)]) == 0
    trials = optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials
    counted = [t for t in trials if not t.user_attrs.get("requeued")]
    assert len(counted) == 2 and all(t.state.name == "COMPLETE" for t in counted)


def _pg_bin(name: str) -> str | None:
    import glob
    import shutil

    return shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server on a Unix socket (skipped where PostgreSQL is not installed)."""
    import shutil
    import socket
    import tempfile

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        message = "PostgreSQL is not installed; `apt-get install postgresql` enables this test (.ci/run does)"
        if os.environ.get("AQUAML_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    import psycopg2  # the test extra brings psycopg2-binary
    root = Path(tempfile.mkdtemp(prefix="aquaml-pg-"))
    root.chmod(0o755)
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own user runs it
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                       capture_output=True)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
                        f"-k {root} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True)
        conn = psycopg2.connect(host=str(root), port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield f"postgresql+psycopg2://postgres@/optuna?host={root}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_tuners_share_one_study_in_a_real_postgresql_server(postgres_url, tmp_path):
    """Two tuner processes, as on two machines (no shared folder), against one PostgreSQL study:
    together exactly --trials trials."""
    import optuna
    import yaml

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    tuners = []
    for k in range(2):
        cmd = [sys.executable, "-m", "aquaml.cli", "tune", "sac", "Pendulum-v1", "--trials", "4", "--budget", "400",
               "--out", str(tmp_path / f"machine{k}"), "--space", str(space), "--storage", postgres_url,
               "--study", "shared", *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
        tuners.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [t.communicate(timeout=600)[0] for t in tuners]
    assert all(t.returncode == 0 for t in tuners), outputs
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert len(trials) == 4 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert sum(bool(t.user_attrs.get("default")) for t in trials) == 1  # enqueued once
    ran = [len(list((tmp_path / f"machine{k}" / "runs").glob("trial_*"))) for k in range(2)]
    assert sum(ran) == 4, ran


@pytest.mark.slow
def test_tuning_sac_on_pendulum_beats_the_default_on_fresh_seeds(tmp_path):
    """A short real study (one worker, so pruning does not depend on timing; median pruning) and its
    confirmation on 2 fresh seeds."""
    import yaml

    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"learning_rate": {"type": "log_float", "low": 3e-4, "high": 3e-3},
                                     "update_times": {"type": "categorical", "choices": [25, 50, 100, 200]},
                                     "batch_size": {"type": "categorical", "choices": [64, 128, 256]}}))
    # six trials: the random sampler's first six (its draws do not depend on --trials) hold three
    # complete, three pruned and the best (measured: trial 4, update_times 200, -143 in the study,
    # -101 on fresh seeds against the default's -127); trials 6 and 7 were pruned at 1k steps
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "6", "--budget", "6000", "--workers", "1", "--out", str(out),
            "--space", str(space), "--sampler", "random", "--set", "display_interval=20", "--set",
            "calculate_episodes=5", "--set", "hidden_sizes=64,64"]
    assert main(argv) == 0
    rows = (out / "trials.csv").read_text().splitlines()[1:]
    states = [r.split(",")[1] for r in rows]
    print("\n".join(rows))
    assert len(rows) == 6 and "pruned" in states
    assert main(["tune", "confirm", str(out), "--top", "1", "--seeds", "2"]) == 0
    confirmation = (out / "confirm.md").read_text()
    print(confirmation)
    assert "is still the best on fresh seeds, and it beats the default there" in confirmation


def test_a_password_in_a_real_postgresql_url_stays_off_disk_and_resume_needs_none_with_trust(postgres_url, tmp_path,
                                                                                          monkeypatch, capsys):
    """The URL with a password (the test server trusts local users, as libpq's PGPASSWORD or
    ~/.pgpass would stand in for it): the study folder and the database's attributes hold none,
    and `tune resume` opens the study from the folder alone."""
    import optuna

    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@", 1)
    monkeypatch.setattr("aquaml.tune.study.TrialProcess", fake_process(lambda sets, seed, steps: steps / 100))
    out = tmp_path / "study"
    argv = ["tune", "sac", "Pendulum-v1", "--trials", "2", "--budget", "400", "--out", str(out), "--space",
            str(_space_file(tmp_path)), "--storage", url, "--study", "secret",
            *sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])]
    assert main(argv) == 0
    assert main(["tune", "resume", str(out)]) == 0
    study = optuna.load_study(study_name="secret", storage=postgres_url)
    assert len(study.trials) == 2 and json.loads((out / "study.json").read_text())["storage"] == postgres_url
    assert not _files_holding(out, SECRET)
    assert SECRET not in json.dumps([study.user_attrs, *[t.user_attrs for t in study.trials]])
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.parametrize("trials", [3, 5])
def test_best_yaml_is_typed_importances_need_five_complete_trials_and_no_lock_file_stays(trials, tmp_path,
                                                                                           monkeypatch):
    import yaml

    from aquaml.tune import report

    titles = {}
    save = report.save
    monkeypatch.setattr(report, "save", lambda fig, path: (titles.update({path.stem: fig.axes[0].get_title()}),
                                                           save(fig, path)))
    monkeypatch.setattr("aquaml.tune.study.TrialProcess",
                        fake_process(lambda sets, seed, steps: -1e3 * float(sets["learning_rate"])))
    out, space = tmp_path / "study", tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({**SPACE, "hidden_sizes": {"type": "categorical", "choices": ["16", "16,16"]}}))
    sets = {k: v for k, v in SMALL.items() if k != "hidden_sizes"}
    argv = ["tune", "sac", "Pendulum-v1", "--trials", str(trials), "--budget", "400", "--out", str(out), "--space",
            str(space), "--pruner", "none", *sum((["--set", f"{k}={v}"] for k, v in sets.items()), [])]
    assert main(argv) == 0
    parameters = yaml.safe_load((out / "best.yaml").read_text())["parameters"]
    assert isinstance(parameters["learning_rate"], float) and parameters["batch_size"] in (32, 64)
    assert parameters["hidden_sizes"] in ([16], [16, 16]) and parameters["update_interval"] == 50  # fixed by --set
    drawn = (out / "plots" / "param_importances.png").exists()
    report_text = (out / "report.md").read_text()
    if trials < report.MIN_IMPORTANCE_TRIALS:
        assert not drawn and f"drawn from 5 complete trials on ({trials} so far)" in report_text
    else:
        assert drawn and titles["param_importances"].endswith(f"(from {trials} complete trials)")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock file left behind
