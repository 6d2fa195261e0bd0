"""Tests leave nothing in the repository: what writes into the current directory lands in a temporary one."""
import os
from pathlib import Path

import pytest

from aquaml import RLTaskStarter, SACParameters

ROOT = Path(__file__).resolve().parents[1]


def test_tests_run_outside_the_repository():
    assert not Path.cwd().resolve().is_relative_to(ROOT)


def test_default_run_root_writes_nothing_into_the_repository():
    before = set(os.listdir(ROOT))
    params = SACParameters(n_epochs=1, update_interval=20, update_times=1, batch_size=8, mini_buffer_size=20,
                           display_interval=1, calculate_episodes=1, hidden_sizes=(8,), seed=0)
    summary = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, progress=False).run()  # run_root='runs'
    assert summary.run_dir.resolve().is_relative_to(Path.cwd().resolve() / "runs")
    assert not summary.run_dir.resolve().is_relative_to(ROOT)
    assert set(os.listdir(ROOT)) - before == set()


def test_mujoco_warning_log_stays_out_of_the_repository():
    pytest.importorskip("mujoco")
    import gymnasium as gym

    before = set(os.listdir(ROOT))
    # its model uses the deprecated 'settotalmass', which MuJoCo logs to ./MUJOCO_LOG.TXT
    gym.make("HalfCheetah-v5").close()
    assert set(os.listdir(ROOT)) - before == set()
