"""The command line's first hour: run folders named by their folder or ``latest``, argument and name
mistakes answered before JAX loads (with "did you mean" and the subcommand's own usage),
``aquaml params``, and a missing extra said in one line.

The mistakes run in one subprocess (a fresh interpreter, so JAX can be seen not to load); the
rest run here on hand-made run folders (a ``config.json`` is what makes a folder a run)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aquaml.algorithm.registry import BUILTINS
from aquaml.apps.params import parameter_table
from aquaml.cli import main
from aquaml.starter.run_dirs import RunNotFound, find_run, runs_in
from aquaml.tools.imports import MissingExtra, missing_extra, optional_import

ROOT = Path(__file__).resolve().parents[1]


def make_runs(folder: Path, *names: str) -> list[Path]:
    """Hand-made run folders ``folder/<name>`` (their config.json is all a run needs to be found)."""
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text("{}")
    return [folder / name for name in names]


#: a script that runs ``aquaml`` on each argv of its JSON argument with the modules it names
#: missing, and prints every exit status and stderr, and whether JAX was imported
HARNESS = """
import contextlib, io, json, sys
mistakes, missing = json.loads(sys.argv[1]), sys.argv[2].split(",")
for name in missing:
    sys.modules[name] = None  # as if its extra were not installed
from aquaml.cli import main
results = []
for argv in mistakes:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue()])
print(json.dumps({"results": results, "jax": "jax" in sys.modules}))
"""


def test_mistakes_are_answered_in_one_line_before_jax_loads(tmp_path):
    make_runs(tmp_path / "runs" / "sac_Pendulum-v1", "20260101-000000")
    (tmp_path / "empty").mkdir()
    mistakes = {
        "sca": (["train", "sca", "Pendulum-v1"], "unknown algorithm 'sca' (did you mean sac?)"),
        "key": (["train", "sac", "Pendulum-v1", "--set", "lerning_rate=1e-3"],
                "unknown parameter 'lerning_rate' (did you mean learning_rate"),
        "env": (["train", "sac", "Pendulum-v0"], "unknown environment id 'Pendulum-v0' (did you mean Pendulum-v1"),
        "missing": (["eval", "runs/sac_Pendulum-v2"], "runs/sac_Pendulum-v2 does not exist (did you mean "
                                                      "runs/sac_Pendulum-v1?)"),
        "no run": (["eval", "empty"], "empty holds no run"),
        "run root": (["collect", "runs", "--episodes", "1", "--out", "x.npz"],
                     "runs holds no run itself but folders of runs: sac_Pendulum-v1 (1 run)"),
        "resume": (["train", "sac", "Pendulum-v1", "--resume", "nowhere"], "nowhere does not exist"),
        "reward": (["train", "sac", "Pendulum-v1", "--reward-model", "empty/latest"], "empty holds no run"),
        "expert": (["train", "dagger", "Pendulum-v1", "--set", "expert=nowhere"], "nowhere does not exist"),
        "generator": (["train", "gail", "Pendulum-v1", "--set", "generator=ppo", "--set", "clip_rang=0.1"],
                      "unknown parameter 'clip_rang' (did you mean clip_range"),
        "tune": (["tune", "sac", "Pendulum-v1", "--trials", "2", "--budget", "100"],
                 'aquaml tune needs optuna: pip install "aquaml[tune]"'),
        "export": (["export", "runs/sac_Pendulum-v1", "--out", "p.onnx"],
                   'aquaml export needs onnx: pip install "aquaml[deploy]"'),
        "video": (["eval", "runs/sac_Pendulum-v1", "--video", "v.mp4"], 'needs imageio: pip install "aquaml[plot]"'),
        "mujoco": (["train", "sac", "HalfCheetah-v5"], 'needs mujoco: pip install "aquaml[mujoco]"'),
        "preset": (["train", "sac", "Pendulum-v1", "--preset", "mine.yaml"],
                   "preset file mine.yaml: No such file or directory"),
    }
    r = subprocess.run([sys.executable, "-c", HARNESS, json.dumps([argv for argv, _ in mistakes.values()]),
                        "optuna,onnx,imageio,mujoco"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    for (name, (_, message)), (code, err) in zip(mistakes.items(), out["results"]):
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)
    assert "CartPole-v1" not in out["results"][2][1]  # the close env ids only, not all of them
    assert not out["jax"], "a mistake was answered only after JAX loaded"


def test_a_usage_error_of_a_subcommand_prints_its_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "sac", "Pendulum-v1", "--set", "batch_size", "64"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: aquaml train ")
    assert "aquaml train: error: unrecognized arguments: 64 (--set takes KEY=VALUE as one word" in err


def test_train_help_points_to_params_and_explains_seed(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "`aquaml params ALGO` lists the keys --set takes" in out and "--seed SEED seed of the models" in out


def test_a_folder_of_runs_stands_for_its_newest_run_and_says_so(tmp_path, capsys):
    folder = tmp_path / "sac_Pendulum-v1"
    runs = make_runs(folder, "20260101-000000-10", "20260101-000000", "20260101-000000-9", "20251231-235959")
    (folder / "20270101-000000").mkdir()  # a folder without config.json is no run
    assert runs_in(folder) == [runs[3], runs[1], runs[2], runs[0]]  # -10 after -9
    assert find_run(folder) == runs[0]
    assert capsys.readouterr().err == f"aquaml: using {runs[0]} (newest of 4)\n"
    assert find_run(folder / "latest") == runs[0]
    assert "(latest of 4)" in capsys.readouterr().err
    assert find_run(runs[1]) == runs[1] and capsys.readouterr().err == ""  # a run is itself, silently


def test_a_missing_path_and_a_folder_without_runs_get_different_messages(tmp_path):
    make_runs(tmp_path / "runs" / "ppo_CartPole-v1", "20260101-000000", "20260102-000000")
    make_runs(tmp_path / "runs" / "sac_Pendulum-v1", "20260101-000000")
    (tmp_path / "runs" / "notes").mkdir()
    with pytest.raises(RunNotFound, match=r"ppo_CartPole-v2 does not exist \(did you mean .*ppo_CartPole-v1\?\)"):
        find_run(tmp_path / "runs" / "ppo_CartPole-v2")
    with pytest.raises(RunNotFound, match="notes holds no run"):
        find_run(tmp_path / "runs" / "notes" / "latest")
    with pytest.raises(RunNotFound, match=r"folders of runs: ppo_CartPole-v1 \(2 runs\), sac_Pendulum-v1 \(1 run\)"):
        find_run(tmp_path / "runs")
    (tmp_path / "file").write_text("")
    with pytest.raises(RunNotFound, match="file is not a run folder"):
        find_run(tmp_path / "file")


def test_params_lists_every_key_with_its_type_default_and_doc(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # docs wrap to the terminal's width, which differs where tests run
    assert main(["params", "sac"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("learning_rate "))
    assert line.split()[:3] == ["learning_rate", "float", "0.001"] and "learning rate of the default models" in line
    assert "hidden_sizes" in out and "64,64" in out and "aliases: epoch_length = episode_length" in out
    assert main(["params"]) == 0 and "gail_ppo" in capsys.readouterr().out
    assert main(["params", "--envs"]) == 0 and "Pendulum-v1" in capsys.readouterr().out.splitlines()
    table = parameter_table(BUILTINS["ppo"].parameters, preset={"n_envs": 16}, width=100)
    assert "preset" in table.splitlines()[0] and " 16 " in next(r for r in table.splitlines() if r.startswith("n_envs"))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_parameter_of_every_algorithm_has_a_doc(name):
    docs = BUILTINS[name].parameters.field_docs()
    assert all(docs.values()), f"{name}: no doc for {[k for k, v in docs.items() if not v]}"


def test_a_missing_optional_package_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtra, match=r'^aquaml tune needs optuna: pip install "aquaml\[tune\]"$'):
        optional_import("optuna", "aquaml tune", "tune")
    assert str(missing_extra(ModuleNotFoundError("No module named 'onnx'", name="onnx"))) == \
        'onnx is not installed: pip install "aquaml[deploy]"'
    from gymnasium.error import DependencyNotInstalled

    rendering = DependencyNotInstalled('pygame is not installed, run `pip install "gymnasium[classic-control]"`')
    assert str(missing_extra(rendering)) == 'this environment needs pygame: pip install "aquaml[plot]"'
    assert missing_extra(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None
