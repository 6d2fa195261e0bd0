"""Parameter dataclasses: derived defaults follow their sources through every override
(constructor, replace, --set, a resume from config.json) unless set explicitly, config.json
shows the effective values, and PPO's passes over a rollout have their own name."""
import json

import pytest

from aquaml.algorithm import (ALGORITHMS, AIRLParameters, AMPParameters, BCParameters, DAggerParameters,
                              GAILParameters, GAILPPOParameters, PPO_parameter, PPOParameters, SAC2_parameter,
                              SACParameters, TD3Parameters)

# Every derived field of every built-in parameter class, written out by hand: a new one must be
# added here (and to the cases below), which test_the_derived_fields_are_the_known_ones enforces.
KNOWN_DERIVED = {
    "sac": {"update_times", "sequence_length"}, "td3": {"update_times"}, "ppo": {"sequence_length"},
    "bc": {"sequence_length"}, "td3bc": set(), "iql": set(), "gail": {"update_times", "sequence_length"},
    "gail_ppo": {"sequence_length"}, "airl": {"update_times", "sequence_length"},
    "airl_ppo": {"sequence_length"}, "amp": {"update_times", "sequence_length"},
    "dagger": {"sequence_length"}, "vae": set(),
}
for _name in KNOWN_DERIVED:  # every algorithm of the training loop schedules its evaluations in steps
    KNOWN_DERIVED[_name] |= {"eval_every"} if _name != "vae" else set()

# (class, base kwargs, derived field, its default from base, source change as --set strings, its value after)
OFF_POLICY = [SACParameters, TD3Parameters, GAILParameters, AIRLParameters, AMPParameters]
WINDOWS_OF_EPISODES = [SACParameters, GAILParameters, AMPParameters, BCParameters, DAggerParameters]
CASES = (
    # update_times: gradient steps per epoch = update_interval unless given
    [(cls, {}, "update_times", 50, {"update_interval": "1"}, 1) for cls in OFF_POLICY]
    + [(cls, {"update_interval": "20"}, "update_times", 20, {"update_interval": "7"}, 7) for cls in OFF_POLICY]
    # sequence_length with batch_trajectory: as long as an episode ...
    + [(cls, {"batch_trajectory": "true", "episode_length": "64", "batch_size": "64"}, "sequence_length", 64,
        {"episode_length": "32", "batch_size": "32"}, 32) for cls in WINDOWS_OF_EPISODES]
    # ... and no windows once batch_trajectory is turned off
    + [(cls, {"batch_trajectory": "true", "episode_length": "64", "batch_size": "64"}, "sequence_length", 64,
        {"batch_trajectory": "false"}, None) for cls in WINDOWS_OF_EPISODES]
    # PPO: as long as the rollout
    + [(cls, {"batch_trajectory": "true", "rollout_length": "64", "n_envs": "2", "batch_size": "64"},
        "sequence_length", 64, {"rollout_length": "32", "batch_size": "32"}, 32)
       for cls in (PPOParameters, GAILPPOParameters)]
)
# eval_every: a twentieth of the run (SAC: 400 epochs of 50 env steps; PPO: 100 of 8 x 128; offline:
# 100 epochs of 1,000 gradient steps), or display_interval epochs when that is given
CASES += (
    [(SACParameters, {}, "eval_every", 1000, {"n_epochs": "800"}, 2000),
     (SACParameters, {}, "eval_every", 1000, {"display_interval": "4"}, 200),
     (SACParameters, {"update_interval": "1", "n_epochs": "30000"}, "eval_every", 1500, {"n_epochs": "1000"}, 50),
     (SACParameters, {"n_epochs": "10"}, "eval_every", 50, {"n_epochs": "11"}, 50),  # at least one epoch
     (PPOParameters, {}, "eval_every", 5120, {"n_envs": "4"}, 2560),
     (PPOParameters, {"display_interval": "3"}, "eval_every", 3072, {"rollout_length": "64"}, 1536),
     (BCParameters, {}, "eval_every", 5000, {"update_times": "500"}, 2500),
     # DAgger: 5 rounds of 800 steps, a twentieth is less than a round: after every round
     (DAggerParameters, {}, "eval_every", 800, {"display_interval": "2"}, 1600)]
    # every other class: display_interval epochs
    + [(algo.Parameters, {}, "eval_every", algo.Parameters().eval_every, {"display_interval": "2"},
        2 * algo.Parameters().steps_per_env * algo.Parameters().n_envs)
       for name, algo in ALGORITHMS.items() if name not in ("sac", "ppo", "bc", "dagger", "vae")]
)
IDS = [f"{c[0].__name__}-{c[2]}-{'+'.join(c[4])}" for c in CASES]


def test_the_derived_fields_are_the_known_ones():
    for name, algo in ALGORITHMS.items():
        fields = getattr(algo.Parameters, "derived_fields", lambda: ())()
        assert set(fields) == KNOWN_DERIVED[name], name
    covered = {(cls, field) for cls, _, field, *_ in CASES}
    for name, algo in ALGORITHMS.items():
        for field in KNOWN_DERIVED[name]:
            if algo.Parameters is not AIRLParameters or field != "sequence_length":  # AIRL refuses windows
                assert any(issubclass(algo.Parameters, c) and f == field for c, f in covered), (name, field)


@pytest.mark.parametrize("cls, base, field, before, sets, after", CASES, ids=IDS)
def test_a_derived_field_follows_its_source_through_set_replace_and_resume(cls, base, field, before, sets, after):
    p = cls().with_strings(base)
    assert getattr(p, field) == before
    # --set (with_strings) and replace after the object was built
    q = p.with_strings(sets)
    assert getattr(q, field) == after
    typed = {k: getattr(q, k) for k in sets}
    assert getattr(p.replace(**typed), field) == after
    # the constructor with all the settings at once agrees
    assert getattr(cls().with_strings({**base, **sets}), field) == after
    # config.json records the effective value and that it was derived
    recorded = json.loads(json.dumps(q.to_dict()))
    assert recorded[field] == after and field in recorded["derived"]
    # a resume rebuilds the same parameters, which keep following the source
    resumed = cls.from_kwargs(**recorded)
    assert resumed == q and resumed.to_dict() == q.to_dict()
    assert getattr(resumed.replace(**{k: getattr(p, k) for k in sets}), field) == before


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_an_explicit_update_times_wins_over_its_source(cls):
    p = cls(update_times=7)
    for q in (p.with_strings({"update_interval": "3"}), p.replace(update_interval=3),
              cls.from_kwargs(**json.loads(json.dumps(p.to_dict()))).replace(update_interval=3)):
        assert (q.update_interval, q.update_times) == (3, 7)
        assert "update_times" not in q.to_dict()["derived"]
    # an explicit value equal to the derived one is still the user's
    same = cls(update_interval=50, update_times=50).with_strings({"update_interval": "5"})
    assert same.update_times == 50
    # set back to None (--set update_times=none): derived again
    assert p.with_strings({"update_times": "none", "update_interval": "4"}).update_times == 4


def test_an_explicit_sequence_length_wins_over_batch_trajectory():
    p = SACParameters(batch_trajectory=True, episode_length=64, sequence_length=8, batch_size=64)
    q = p.replace(episode_length=32, batch_size=32)
    assert q.sequence_length == 8 and q.to_dict()["derived"] == ["eval_every", "update_times"]
    pp = PPOParameters(batch_trajectory=True, rollout_length=64, n_envs=2, batch_size=64, sequence_length=16)
    assert pp.with_strings({"rollout_length": "32", "batch_size": "32"}).sequence_length == 16


def test_the_cli_example_runs_one_gradient_step_per_env_step():
    """``aquaml train sac ENV --set update_interval=1`` builds its parameters this way."""
    p = SACParameters().with_strings({"update_interval": "1"})
    p = p.replace(n_epochs=1000)  # --steps 1000
    assert (p.update_interval, p.update_times) == (1, 1)
    assert p.to_dict()["update_times"] == 1


def test_old_config_files_resume_with_their_recorded_values():
    # written before 'derived' was recorded: every value counts as given
    old = {k: v for k, v in SACParameters(update_interval=20).to_dict().items() if k != "derived"}
    assert old["update_times"] == 20
    p = SACParameters.from_kwargs(**old)
    assert (p.update_interval, p.update_times) == (20, 20)
    # a value edited by hand in config.json, listed as derived, is the user's
    edited = {**SACParameters().to_dict(), "update_times": 5}
    assert SACParameters.from_kwargs(**edited).replace(update_interval=9).update_times == 5
    with pytest.raises(TypeError, match="must list field names"):
        SACParameters.from_kwargs(**{**SACParameters().to_dict(), "derived": "update_times"})


def test_ppo_passes_over_a_rollout_are_n_update_epochs():
    p = PPOParameters()
    assert p.n_update_epochs == 10 and not hasattr(p, "update_times")
    assert "update_times" not in p.to_dict() and p.to_dict()["n_update_epochs"] == 10
    # the seed's name and the older alias still work everywhere
    assert PPO_parameter(update_times=3).n_update_epochs == 3
    assert PPOParameters(update_times=4).n_update_epochs == 4
    assert PPOParameters.from_kwargs(update_epochs=5).n_update_epochs == 5
    assert p.with_strings({"update_times": "6"}).n_update_epochs == 6
    assert p.replace(update_times=7).n_update_epochs == 7
    assert GAILPPOParameters(update_times=2).n_update_epochs == 2
    with pytest.raises(TypeError, match="both set 'n_update_epochs'"):
        PPO_parameter(update_times=3, n_update_epochs=4)
    # an old PPO run's config.json (update_times, no 'derived') still resumes
    old = {**{k: v for k, v in p.to_dict().items() if k not in ("n_update_epochs", "derived")}, "update_times": 8}
    resumed = PPOParameters.from_kwargs(**old)
    assert resumed.n_update_epochs == 8 and resumed == p.replace(n_update_epochs=8)
    # what a resume's check of unchanged parameters can compare with (old names read as such)
    assert resumed.changed_from(old) == [] and p.changed_from(old) == ["n_update_epochs"]
    assert resumed.replace(batch_size=64, ent_coef=0.1).changed_from(old) == ["batch_size", "ent_coef"]
    # the seed's off-policy meaning is unchanged: gradient steps per epoch
    assert SAC2_parameter(update_interval=20, update_times=5).update_times == 5


def test_the_registry_knows_each_builtin_as_its_class_does():
    """The command line reads a built-in's name, parameters and variants from the registry without
    importing it (nor JAX): each entry must say what the class it names says."""
    from aquaml.algorithm.feeders import feeder_of
    from aquaml.algorithm.registry import BUILTINS, algorithm_reference

    assert set(BUILTINS) == set(ALGORITHMS)
    for name, builtin in BUILTINS.items():
        cls = ALGORITHMS[name]
        assert (cls.name, cls.Parameters, algorithm_reference(cls)) == (name, builtin.parameters, name)
        assert dict(getattr(cls, "generators", {})) == dict(builtin.generators), name
        assert feeder_of(cls).needs_env == builtin.needs_env, name


def test_parse_strings_gives_typed_values_by_field_name():
    values = PPOParameters.parse_strings({"gamma": "0.9", "hidden_sizes": "32,32", "clip_value": "None",
                                          "batch_size": "64", "normalize_obs": "false"})
    assert values == {"discount": 0.9, "hidden_sizes": (32, 32), "clip_value": None, "batch_size": 64,
                      "normalize_obs": False}
    with pytest.raises(TypeError, match=r"unknown parameter 'ALIASES'"):  # a class attribute is no parameter
        PPOParameters.parse_strings({"ALIASES": "x"})
