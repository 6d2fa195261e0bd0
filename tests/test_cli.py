"""Run folders named by their folder or ``latest`` (on hand-made run folders: a ``config.json`` is
what makes a folder a run), and a missing extra said in one line."""
import sys
from pathlib import Path

import pytest

from aquaml.starter.run_dirs import RunNotFound, find_run, runs_in
from aquaml.tools.imports import MissingExtra, missing_extra, optional_import


def make_runs(folder: Path, *names: str) -> list[Path]:
    """Hand-made run folders ``folder/<name>`` (their config.json is all a run needs to be found)."""
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text("{}")
    return [folder / name for name in names]


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

