"""The algorithm contract and the run session's checks that need no training: which feeder an
algorithm gets, the parameter fields it must have, stopping data-parallel learners, resuming a
run whose config predates a parameter, and the light command line."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from aquaml.algorithm import IQLParameters, PPO, SAC, Parameters
from aquaml.algorithm.feeders import (AdversarialReplayFeeder, AdversarialRolloutFeeder, Feeder, ReplayFeeder,
                                      RolloutFeeder, feeder_of)
from aquaml.algorithm.interface import check_parameters
from aquaml.starter.loop import TrainingLoop
from aquaml.starter.run_folder import RunFolder


def test_the_most_derived_declaration_of_feeder_or_kind_wins():
    class AdversarialSAC(SAC):
        kind = "adversarial"

    class AdversarialPPO(PPO):
        kind = "adversarial_rollouts"

    class MyFeeder(Feeder):
        pass

    class OwnFeeder(AdversarialSAC):
        feeder = MyFeeder

    assert feeder_of(SAC) is ReplayFeeder and feeder_of(PPO) is RolloutFeeder
    assert feeder_of(AdversarialSAC) is AdversarialReplayFeeder  # not SAC's inherited ReplayFeeder
    assert feeder_of(AdversarialPPO) is AdversarialRolloutFeeder
    assert feeder_of(OwnFeeder) is MyFeeder

    class Wrong(SAC):
        feeder = object

    with pytest.raises(TypeError, match="Wrong.feeder = .*must be a subclass of aquaml.algorithm.feeders.Feeder"):
        feeder_of(Wrong)


def test_parameters_lacking_what_the_feeder_reads_are_named_before_anything_is_built():
    @dataclass
    class Bare(Parameters):
        n_epochs: int = 3
        seed: int = 0

    class BareSAC(SAC):
        Parameters = Bare

    with pytest.raises(TypeError, match=r"Bare lacks n_envs, overlap, .*buffer_size, mini_buffer_size, batch_size, "
                                        r"update_times, save_buffer, which the training loop or ReplayFeeder reads"):
        check_parameters(BareSAC, Bare())


def test_data_parallel_learners_refuse_a_stop_request():
    loop = TrainingLoop(None, None, None, None, None, None, np.random.default_rng(0))
    loop.can_stop_early = False  # what RLTaskStarter sets under learners > 1
    with pytest.raises(RuntimeError, match="data-parallel learners .* train to the end"):
        loop.request_stop()
    assert not loop.stopped
    loop.can_stop_early = True
    loop.request_stop()
    assert loop.stopped


def test_a_run_whose_config_lacks_a_parameter_added_since_is_not_resumed(tmp_path):
    """An IQL run started before ``normalize_rewards`` existed trained on raw rewards; resuming it
    with today's default (normalised rewards) would not continue the same run."""
    saved = IQLParameters(dataset="d.npz").to_dict()
    del saved["normalize_rewards"]
    folder = RunFolder.create(tmp_path, "iql", {"algo": "iql", "parameters": saved})
    with pytest.raises(ValueError, match=r"different parameters \['normalize_rewards'\] \(normalize_rewards: new "
                                         r"since this run started\)"):
        folder.check_resumable("iql", IQLParameters(dataset="d.npz"))
    complete = RunFolder.create(tmp_path, "iql2", {"algo": "iql", "parameters": IQLParameters(dataset="d.npz").to_dict()})
    complete.check_resumable("iql", IQLParameters(dataset="d.npz", n_epochs=7))  # how long may change
    with pytest.raises(ValueError, match=r"different parameters \['expectile'\] would"):
        complete.check_resumable("iql", IQLParameters(dataset="d.npz", expectile=0.9))


def test_plot_and_tune_command_lines_load_no_jax():
    code = ("import sys, aquaml.plot.cli, aquaml.plot.logs, aquaml.tune.cli, aquaml.tools.console\n"
            "assert 'jax' not in sys.modules and 'keras' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
