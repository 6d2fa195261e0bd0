import gymnasium as gym
import numpy as np
import pytest

from aquaml.env import EnvContractError, EnvDriver, GymnasiumEnv, make_env
from helpers import DictObsEnv, Drift, SeedStyleEnv


def test_gym_adapter_rescales_actions_to_bounds():
    env = GymnasiumEnv(Drift())
    env.reset()
    for a, expected in [(-1.0, -1.0), (1.0, 3.0), (0.0, 1.0), (0.5, 2.0)]:
        env.step({"action": np.array([[a]], np.float32)})
        np.testing.assert_allclose(env.env.last_action, [expected], rtol=1e-6)


def test_gym_adapter_named_observations_with_batch_dim():
    env = GymnasiumEnv("Pendulum-v1")
    assert env.obs_info.shape_dict == {"obs": (3,)}
    obs = env.reset()
    assert obs["obs"].shape == (1, 3) and obs["obs"].dtype == np.float32
    out = env.step({"action": np.zeros((1, 1), np.float32)})
    assert len(out) == 5


def test_gym_adapter_dict_observation_space():
    env = GymnasiumEnv(DictObsEnv())
    assert env.obs_info.shape_dict == {"pos": (1,), "goal": (2,)}
    obs = env.reset()
    assert obs["goal"].shape == (1, 2) and obs["pos"].shape == (1, 1)


def test_gym_adapter_discrete_actions():
    env = GymnasiumEnv("CartPole-v1")
    assert env.action_space_info.n == 2 and env.action_space_info.shape == (2,)
    env.reset()
    obs, reward, *_ = env.step({"action": np.array([1])})
    assert reward == 1.0


def test_gym_adapter_rejects_unsupported_spaces():
    with pytest.raises(TypeError, match="observation space Tuple"):
        GymnasiumEnv(gym.make("Blackjack-v1").unwrapped)

    class MultiDiscreteAction(Drift):
        action_space = gym.spaces.MultiDiscrete([2, 3])

    with pytest.raises(TypeError, match="action space MultiDiscrete"):
        GymnasiumEnv(MultiDiscreteAction())


def test_make_env_unknown_id_names_the_close_ids_only():
    with pytest.raises(ValueError, match=r"did you mean Pendulum-v1.*\?\); `aquaml params --envs` lists every id") as e:
        make_env("Pendulum-v9")
    assert "CartPole-v1" not in str(e.value)


def test_seeded_resets_are_reproducible():
    d1, d2 = EnvDriver(GymnasiumEnv("Pendulum-v1")), EnvDriver(GymnasiumEnv("Pendulum-v1"))
    np.testing.assert_array_equal(d1.reset(7)["obs"], d2.reset(7)["obs"])
    assert not np.array_equal(d1.reset(8)["obs"], d2.reset(7)["obs"])
    # the seed-style wrapper is seeded through its self.env
    s1, s2 = EnvDriver(SeedStyleEnv()), EnvDriver(SeedStyleEnv())
    np.testing.assert_array_equal(s1.reset(3)["obs"], s2.reset(3)["obs"])


def test_driver_time_limit_is_truncation_not_termination():
    driver = EnvDriver(SeedStyleEnv(), episode_length=4)
    driver.reset(0)
    results = [driver.step({"action": np.zeros((1, 1), np.float32)}) for _ in range(4)]
    assert [r.truncated for r in results] == [False, False, False, True]
    assert not any(r.terminated for r in results)


def test_four_value_done_with_timelimit_info_is_truncation():
    class Timed(SeedStyleEnv):
        def step(self, action_dict):
            obs, reward, _, info = super().step(action_dict)
            return obs, reward, True, {"TimeLimit.truncated": True}

    class Dies(SeedStyleEnv):
        def step(self, action_dict):
            obs, reward, _, info = super().step(action_dict)
            return obs, reward, True, {}

    for cls, term in ((Timed, False), (Dies, True)):
        driver = EnvDriver(cls())
        driver.reset(0)
        r = driver.step({"action": np.zeros((1, 1), np.float32)})
        assert (r.terminated, r.truncated) == (term, not term)


def test_done_at_episode_length_is_termination():
    """A real end on the last allowed step is a termination (no bootstrapping), 4 or 5 values."""
    class DoneAtThree(SeedStyleEnv):
        def step(self, action_dict):
            obs, reward, _, info = super().step(action_dict)
            return obs, reward, self.t >= 3, info

    class TimedAtThree(SeedStyleEnv):
        def step(self, action_dict):
            obs, reward, _, info = super().step(action_dict)
            return obs, reward, self.t >= 3, {"TimeLimit.truncated": self.t >= 3}

    class FiveValueDoneAtThree(SeedStyleEnv):
        def step(self, action_dict):
            obs, reward, _, info = super().step(action_dict)
            return obs, reward, self.t >= 3, False, info

    zero = {"action": np.zeros((1, 1), np.float32)}
    for cls, limit, last in ((DoneAtThree, 3, (True, False)), (DoneAtThree, 10, (True, False)),
                             (FiveValueDoneAtThree, 3, (True, False)), (TimedAtThree, 3, (False, True))):
        driver = EnvDriver(cls(), episode_length=limit)
        driver.reset(0)
        results = [driver.step(zero) for _ in range(3)]
        assert [(r.terminated, r.truncated) for r in results] == [(False, False), (False, False), last], cls


def test_reward_dict_and_array_rewards_are_read():
    driver = EnvDriver(SeedStyleEnv())
    driver.reset(0)
    r = driver.step({"action": np.ones((1, 1), np.float32)})
    assert isinstance(r.reward, float)


@pytest.mark.parametrize("bad, match", [
    ("nan", "observation 'obs' contains NaN"),
    ("shape", r"observation 'obs' has shape \(1,\), expected \(1, 1\)"),
    ("extra", r"observations \['velocity'\] that _obs_info does not declare"),
])
def test_driver_names_the_broken_observation(bad, match):
    driver = EnvDriver(SeedStyleEnv(bad=bad, bad_at=2))
    driver.reset(0)
    driver.step({"action": np.zeros((1, 1), np.float32)})
    with pytest.raises(EnvContractError, match=match):
        driver.step({"action": np.zeros((1, 1), np.float32)})


def test_driver_rejects_nan_reward_and_missing_obs():
    class NanReward(SeedStyleEnv):
        def step(self, action_dict):
            obs, _, done, info = super().step(action_dict)
            return obs, {"total_reward": float("nan")}, done, info

    driver = EnvDriver(NanReward())
    driver.reset(0)
    with pytest.raises(EnvContractError, match="reward is nan"):
        driver.step({"action": np.zeros((1, 1), np.float32)})

    class Missing(SeedStyleEnv):
        def reset(self):
            return {}

    with pytest.raises(EnvContractError, match="did not return observation 'obs'"):
        EnvDriver(Missing()).reset(0)


def test_env_gets_its_own_copy_of_the_action():
    class InPlace(SeedStyleEnv):
        def step(self, action_dict):
            action_dict["action"] *= 2  # the seed's tutorial does this
            return super().step(action_dict)

    driver = EnvDriver(InPlace())
    driver.reset(0)
    action = {"action": np.full((1, 1), 0.25, np.float32)}
    driver.step(action)
    assert action["action"][0, 0] == 0.25


def test_state_outputs_zero_at_reset_and_fed_back():
    env = SeedStyleEnv()
    env.set_state_outputs({"hidden": (4,)})
    driver = EnvDriver(env)
    obs = driver.reset(0)
    np.testing.assert_array_equal(obs["hidden"], np.zeros((1, 4)))
    h = np.arange(4, dtype=np.float32).reshape(1, 4)
    r = driver.step({"action": np.zeros((1, 1), np.float32), "hidden": h})
    np.testing.assert_array_equal(r.obs["hidden"], h)
    np.testing.assert_array_equal(driver.reset(1)["hidden"], np.zeros((1, 4)))  # no leak across episodes


def test_state_output_clashing_with_observation_is_rejected():
    with pytest.raises(ValueError, match="rename"):
        SeedStyleEnv().set_state_outputs({"obs": (1,)})


def test_missing_obs_info_is_explained():
    from aquaml import RLBaseEnv

    class NoInfo(RLBaseEnv):
        pass

    with pytest.raises(TypeError, match="_obs_info is not set"):
        NoInfo().obs_info


def test_position_only_ids_and_named_views():
    from aquaml.env import PositionOnlyEnv

    env = make_env("PendulumNoVel-v1")
    assert env.obs_info.shape_dict == {"obs": (2,)} and env.max_episode_steps == 200
    cart = EnvDriver(make_env("CartPoleNoVel-v1"))
    obs = cart.reset(0)
    full = EnvDriver(make_env("CartPole-v1")).reset(0)
    np.testing.assert_array_equal(obs["obs"], full["obs"][:, [0, 2]])  # same seed, velocities dropped
    views = PositionOnlyEnv("Pendulum-v1")
    assert views.obs_info.shape_dict == {"obs": (3,), "pos": (2,)}
    o = EnvDriver(views).reset(3)
    np.testing.assert_array_equal(o["pos"], o["obs"][:, :2])
    with pytest.raises(ValueError, match="no position-only view"):
        PositionOnlyEnv("HalfCheetah-v5")
