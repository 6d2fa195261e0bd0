"""Presets per environment (issue 21): the shipped tables hold what their sources say, every entry
fits its algorithm, and ``aquaml train`` chooses, overrides, records and turns off a preset."""
import json
from pathlib import Path

import pytest

from aquaml.algorithm.builtin_parameters import PPOParameters, SACParameters, TD3Parameters
from aquaml.algorithm.presets import PresetError, builtin_presets, find_preset, read_presets
from aquaml.apps.params import describe
from aquaml.cli import main as cli

MUJOCO = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5", "Reacher-v5",
          "InvertedPendulum-v5", "InvertedDoublePendulum-v5"]
PARAMETERS = {"sac": SACParameters, "td3": TD3Parameters, "ppo": PPOParameters}


def test_every_mujoco_task_has_a_preset_for_sac_td3_and_ppo_and_every_entry_fits():
    tables = builtin_presets()
    for algo, cls in PARAMETERS.items():
        assert set(MUJOCO) <= set(tables[algo]), (algo, set(MUJOCO) - set(tables[algo]))
        assert "Pendulum-v1" in tables[algo]
        for env, preset in tables[algo].items():
            assert preset.source and preset.steps, (algo, env)
            cls().with_strings(preset.values)  # every key exists and every value parses and checks


# (algo, env, {parameter: value}) copied by hand from RL Zoo's hyperparams/*.yml (rl-baselines3-zoo,
# ppo.yml at 208b6fd, sac.yml at c94924e, td3.yml at d29756c), with SB3's defaults where RL Zoo gives none
ZOO = [
    ("sac", "HalfCheetah-v5", {"hidden_sizes": (256, 256), "learning_rate": 3e-4, "batch_size": 256,
                               "update_interval": 1, "update_times": 1, "mini_buffer_size": 10_000,
                               "buffer_size": 1_000_000, "discount": 0.99, "tau": 0.005, "alpha": 1.0}, 1_000_000),
    ("sac", "Humanoid-v5", {"mini_buffer_size": 10_000}, 2_000_000),
    ("sac", "Swimmer-v5", {"discount": 0.9999, "update_interval": 1}, 1_000_000),
    ("td3", "Hopper-v5", {"hidden_sizes": (400, 300), "learning_rate": 1e-3, "batch_size": 256, "update_interval": 1,
                          "update_times": 1, "mini_buffer_size": 10_000, "exploration_noise": 0.1}, 1_000_000),
    ("ppo", "Hopper-v5", {"n_envs": 1, "rollout_length": 512, "batch_size": 32, "discount": 0.999,
                          "learning_rate": 9.80828e-05, "ent_coef": 0.00229519, "clip_range": 0.2,
                          "n_update_epochs": 5, "gae_lambda": 0.99, "max_grad_norm": 0.7, "log_std_init": -2.0,
                          "hidden_sizes": (256, 256), "normalize_obs": True, "scale_reward": True}, 1_000_000),
    ("ppo", "HalfCheetah-v5", {"batch_size": 64, "rollout_length": 512, "discount": 0.98,
                               "learning_rate": 2.0633e-05, "ent_coef": 0.000401762, "clip_range": 0.1,
                               "n_update_epochs": 20, "gae_lambda": 0.92, "max_grad_norm": 0.8}, 1_000_000),
    ("ppo", "Walker2d-v5", {"batch_size": 32, "learning_rate": 5.05041e-05, "ent_coef": 0.000585045,
                            "clip_range": 0.1, "n_update_epochs": 20, "gae_lambda": 0.95, "max_grad_norm": 1.0},
     1_000_000),
]


@pytest.mark.parametrize("algo, env, expected, steps", ZOO, ids=[f"{a}-{e}" for a, e, *_ in ZOO])
def test_presets_hold_rl_zoos_numbers(algo, env, expected, steps):
    preset = find_preset(algo, env)
    params = PARAMETERS[algo]().with_strings(preset.values)
    assert {k: getattr(params, k) for k in expected} == expected
    assert preset.steps == steps and "RL Zoo" in preset.source


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_malformed_preset_file_is_named_with_what_is_wrong(tmp_path):
    cases = {
        "Pendulum-v1: [1, 2\n": "is not valid YAML",
        "Pendulum-v1: {set: {learning_rate: 0.1}}\n": "an entry needs 'source'",
        "Pendulum-v1: {source: mine, lr: 0.1}\n": "unknown keys ['lr']",
        "Pendulum-v1: {source: mine, steps: 1.5}\n": "'steps' must be a positive whole number",
        "- a list\n": "expected a mapping",
    }
    for text, message in cases.items():
        with pytest.raises(PresetError) as error:
            read_presets(write(tmp_path / "p.yaml", text), "sac")
        assert str(error.value).startswith(f"preset file {tmp_path / 'p.yaml'}") and message in str(error.value)


@pytest.fixture
def capped(monkeypatch, tmp_path):
    """One epoch per run (docs/outputs.md's AQUAML_MAX_STEPS), runs under tmp_path."""
    monkeypatch.setenv("AQUAML_MAX_STEPS", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_of(root: Path) -> dict:
    (path,) = root.glob("runs/*/*/config.json")
    return json.loads(path.read_text())


def test_train_uses_the_preset_says_so_and_records_it_and_set_overrides_a_key(capped, capsys):
    assert cli(["train", "sac", "Reacher-v5", "--set", "batch_size=128", "--set", "tau=0.01"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("aquaml: sac preset for Reacher-v5"))
    assert "learning_rate=0.0003" in line and "yours: batch_size, tau" in line and "batch_size=256" not in line
    assert "trains 1 steps (at least one epoch) instead of 300,000" in out  # the preset's steps
    config = config_of(capped)
    p = config["parameters"]
    assert (p["hidden_sizes"], p["update_interval"], p["update_times"], p["mini_buffer_size"]) == ([256, 256], 1, 1,
                                                                                                   10_000)
    assert (p["batch_size"], p["tau"]) == (128, 0.01)  # --set wins over the preset
    assert config["preset"]["env"] == "Reacher-v5" and config["preset"]["values"]["batch_size"] == "256"


def test_preset_none_trains_the_bare_defaults_and_a_file_of_ones_own_is_read(capped, capsys):
    assert cli(["train", "sac", "Reacher-v5", "--preset", "none", "--name", "bare"]) == 0
    assert "preset" not in capsys.readouterr().out
    bare = config_of(capped)
    assert "preset" not in bare and bare["parameters"]["hidden_sizes"] == list(SACParameters().hidden_sizes)
    mine = write(capped / "mine.yaml", "Pendulum-v1:\n  source: my tuning\n  set: {learning_rate: 0.002, "
                                       "hidden_sizes: [32, 32]}\n")
    assert cli(["train", "sac", "Pendulum-v1", "--preset", mine, "--name", "mine", "--run-root", "mine"]) == 0
    assert f"aquaml: sac preset for Pendulum-v1 from {mine} (my tuning)" in capsys.readouterr().out
    (path,) = capped.glob("mine/mine/*/config.json")
    p = json.loads(path.read_text())["parameters"]
    assert (p["learning_rate"], p["hidden_sizes"]) == (0.002, [32, 32])


def test_preset_mistakes_are_answered_before_training(capped, capsys):
    assert cli(["train", "sac", "Pendulum-v1", "--preset", write(capped / "x.yaml", "CartPole-v1: {source: s}\n")]) == 2
    assert "has no entry for Pendulum-v1" in capsys.readouterr().err
    bad = write(capped / "bad.yaml", "Pendulum-v1: {source: s, set: {lerning_rate: 0.1}}\n")
    assert cli(["train", "sac", "Pendulum-v1", "--preset", bad]) == 2
    assert f"preset file {bad}, Pendulum-v1:" in capsys.readouterr().err
    assert cli(["train", "sac", "Pendulum-v1", "--resume", "runs", "--preset", "none"]) == 2
    assert "drop --set/--seed/--reward-model/--preset" in capsys.readouterr().err
    assert not (capped / "runs").exists()


def test_an_older_version_of_a_preset_environment_is_pointed_to(capped, capsys):
    assert cli(["train", "sac", "InvertedPendulum-v4", "--steps", "1"]) == 0
    assert ("aquaml: no sac preset for InvertedPendulum-v4, the defaults apply (presets exist for "
            "InvertedPendulum-v5)") in capsys.readouterr().out


def test_params_shows_the_preset_column_and_its_source():
    text = describe("ppo", "Hopper-v5")
    assert "preset for Hopper-v5: RL Zoo ppo.yml, Hopper-v4 (tuned); 1,000,000 steps unless --steps" in text
    row = next(r for r in text.splitlines() if r.startswith("n_update_epochs"))
    assert row.split()[:4] == ["n_update_epochs", "int", "10", "5"]
    assert "no sac preset, the defaults apply (presets exist for HalfCheetah-v5)" in describe("sac", "HalfCheetah-v4")
