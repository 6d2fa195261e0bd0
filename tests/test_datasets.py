"""Datasets: building, checks naming field and episode, files (npz, HDF5, Minari, .npy folders),
recording a trained agent's episodes, and replay buffers turned back into episodes."""
import json
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

from aquaml.data import Dataset, DatasetError, load_data, load_dataset, save_data


def episode(T, rng, names=("obs",), terminated=False, action_scale=1.0):
    obs = {k: rng.normal(size=(T + 1, 3)).astype(np.float32) for k in names}
    ends = np.zeros(T, bool)
    ends[-1] = True
    return {"observations": obs, "action": rng.uniform(-1, 1, (T, 1)).astype(np.float32) * action_scale,
            "reward": rng.normal(size=T).astype(np.float32), "terminated": ends if terminated else np.zeros(T, bool),
            "truncated": np.zeros(T, bool) if terminated else ends}


@pytest.fixture
def dataset():
    rng = np.random.default_rng(0)
    eps = [episode(5, rng, ("obs", "pos"), terminated=True), episode(3, rng, ("obs", "pos"))]
    return Dataset.from_episodes(eps, {"env": "Pendulum-v1", "action_low": [-2.0], "action_high": [2.0]})


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def assert_same(a: Dataset, b: Dataset):
    assert a.arrays().keys() == b.arrays().keys()
    for k, v in a.arrays().items():
        np.testing.assert_array_equal(v, b.arrays()[k], err_msg=k)
        assert v.dtype == b.arrays()[k].dtype, k


def test_transitions_pair_each_step_with_its_next_observation(dataset):
    t = dataset.transitions()
    ep1 = dataset.episode(1)
    np.testing.assert_array_equal(t["obs/obs"][5:], ep1["observations"]["obs"][:3])
    np.testing.assert_array_equal(t["next_obs/obs"][5:], ep1["observations"]["obs"][1:])
    # the first episode's last step leads to its own final observation, not episode 1's first
    np.testing.assert_array_equal(t["next_obs/pos"][4], dataset.episode(0)["observations"]["pos"][5])
    assert t["terminated"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0] and t["truncated"][-1]
    np.testing.assert_allclose(dataset.returns(), [ep["reward"].sum() for ep in map(dataset.episode, range(2))],
                               rtol=1e-6)


def test_select_keeps_whole_episodes(dataset):
    one = dataset.select([1])
    assert one.n_episodes == 1 and one.n_steps == 3
    np.testing.assert_array_equal(one.observations["obs"], dataset.episode(1)["observations"]["obs"])


def numbered_episodes(lengths):
    """Episodes built by hand whose every value tells its episode and step: observation rows
    ``100 * e + t`` (``t = 0 .. T``), actions and rewards ``100 * e + t`` too."""
    eps = []
    for e, T in enumerate(lengths):
        t = np.arange(T + 1, dtype=np.float32)
        ends = np.arange(T) == T - 1
        eps.append({"observations": {"obs": np.stack([100 * e + t, -(100 * e + t)], axis=1)},
                    "action": (100 * e + t[:T]).reshape(T, 1) / 1000, "reward": 100 * e + t[:T],
                    "terminated": ends & (e % 2 == 0), "truncated": ends & (e % 2 == 1)})
    return eps


def assert_episode(got, want):
    np.testing.assert_array_equal(got["observations"]["obs"], want["observations"]["obs"])
    for k in ("action", "reward", "terminated", "truncated"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_negative_episode_indices_count_from_the_end():
    eps = numbered_episodes([4, 2, 3])
    ds = Dataset.from_episodes(eps)
    for i in range(-3, 3):  # Python's meaning: eps[i]
        assert_episode(ds.episode(i), eps[i])
    np.testing.assert_array_equal(ds.episode(-1)["observations"]["obs"][:, 0], [200, 201, 202, 203])
    last = ds.select([-1])
    assert last.lengths.tolist() == [3]
    assert_episode(last.episode(0), eps[2])
    mixed = ds.select([-1, 0, -2])
    assert mixed.lengths.tolist() == [3, 4, 2]
    for got, want in enumerate([2, 0, 1]):
        assert_episode(mixed.episode(got), eps[want])
    assert_episode(ds.select(np.array([-3])).episode(0), eps[0])
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"episode index {bad} out of range: the dataset holds 3 episodes"):
            ds.episode(bad)
        with pytest.raises(IndexError, match=f"episode index {bad} out of range"):
            ds.select([0, bad])


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_dataset_files_round_trip_exactly(dataset, tmp_path, suffix):
    path = save_data(tmp_path / f"demo{suffix}", dataset)
    loaded = load_data(path)
    assert isinstance(loaded, Dataset) and loaded.metadata == dataset.metadata
    assert_same(dataset, loaded)
    assert load_dataset(path).digest() == dataset.digest()
    assert not list(tmp_path.glob("*.tmp"))


def test_plain_arrays_still_load_as_a_dict_and_a_dataset_layout_by_hand_loads(tmp_path, dataset):
    path = save_data(tmp_path / "plain.npz", {"x": np.arange(3)})
    assert isinstance(load_data(path), dict)
    with pytest.raises(DatasetError, match="named arrays, not a dataset"):
        load_dataset(path)
    np.savez(tmp_path / "by_hand.npz", **dataset.arrays())
    assert_same(load_dataset(tmp_path / "by_hand.npz"), dataset)


def test_files_are_never_unpickled(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "action.npy", np.zeros((2, 1)))
    np.save(tmp_path / "reward.npy", np.zeros(2))
    with pytest.raises(ValueError, match="pickle"):
        load_data(tmp_path)


# -- bad data fails before training, naming the field and the episode --------------------
def test_mismatched_lengths_name_the_episode_and_field():
    rng = np.random.default_rng(1)
    bad = episode(4, rng)
    bad["reward"] = bad["reward"][:-1]
    with pytest.raises(DatasetError, match=r"episode 1: field 'reward' has 3 steps, 'action' has 4"):
        Dataset.from_episodes([episode(3, rng), bad])
    short = episode(4, rng)
    short["observations"]["obs"] = short["observations"]["obs"][:-1]
    with pytest.raises(DatasetError, match=r"episode 0: observation 'obs' has 4 rows; 4 steps need 5"):
        Dataset.from_episodes([short])


def test_nan_names_field_episode_and_step():
    rng = np.random.default_rng(2)
    eps = [episode(3, rng), episode(4, rng)]
    eps[1]["observations"]["obs"][2, 1] = np.nan
    with pytest.raises(DatasetError, match=r"observation 'obs' holds NaN or inf in episode 1 at step 2"):
        Dataset.from_episodes(eps)
    eps = [episode(3, rng), episode(4, rng)]
    eps[1]["reward"][3] = np.inf
    with pytest.raises(DatasetError, match=r"'reward' holds NaN or inf in episode 1 at step 3"):
        Dataset.from_episodes(eps)


def test_empty_dataset_and_an_end_inside_an_episode_fail():
    with pytest.raises(DatasetError, match="empty"):
        Dataset.from_episodes([])
    rng = np.random.default_rng(3)
    ep = episode(5, rng)
    ep["terminated"][2] = True
    with pytest.raises(DatasetError, match="episode 0 ends at step 2"):
        Dataset.from_episodes([ep])


def test_checks_against_the_models(dataset):
    with pytest.raises(DatasetError, match="lacks observation 'vel' that the actor model reads; it holds obs, pos"):
        dataset.check_for({"vel": (3,)}, (1,), readers={"vel": "actor"})
    with pytest.raises(DatasetError, match=r"observation 'obs' has shape \(3,\) per step in the dataset; the models "
                                           r"read \(4,\)"):
        dataset.check_for({"obs": (4,)}, (1,))
    with pytest.raises(DatasetError, match=r"'action' has shape \(1,\) per step in the dataset; the actor outputs"):
        dataset.check_for({"obs": (3,)}, (2,))
    rng = np.random.default_rng(4)
    wide = Dataset.from_episodes([episode(3, rng), episode(3, rng, action_scale=3.0)])
    with pytest.raises(DatasetError, match=r"'action' in episode 1 at step \d is \[.*\], outside the action space"):
        wide.check_for({"obs": (3,)}, (1,))
    discrete = Dataset.from_episodes([{**episode(3, rng), "action": np.array([0, 1, 2])}])
    with pytest.raises(DatasetError, match=r"'action' in episode 0 at step 2 is 2, outside the 2 discrete actions"):
        discrete.check_for({"obs": (3,)}, None, n_actions=2)
    dataset.check_for({"obs": (3,), "pos": (3,)}, (1,))  # fine


# -- Minari ---------------------------------------------------------------------------------
def test_minari_export_and_import_round_trip_exactly(dataset, minari_home):
    assert save_data("minari:aquaml-test/demo-v0", dataset) == "minari:aquaml-test/demo-v0"
    import minari

    exported = minari.load_dataset("aquaml-test/demo-v0")
    assert exported.total_episodes == 2 and exported.total_steps == 8
    ep = next(iter(exported.iterate_episodes()))
    # Minari holds the env's units: [-1, 1] scaled to Pendulum's [-2, 2]
    np.testing.assert_allclose(ep.actions, 2.0 * dataset.episode(0)["action"], rtol=1e-6)
    assert set(ep.observations) == {"obs", "pos"}
    back = load_data("minari:aquaml-test/demo-v0")
    assert_same(dataset, back)
    assert back.metadata["env"] == "Pendulum-v1"
    # a Minari dataset directory loads too
    assert_same(dataset, load_data(minari_home / "aquaml-test" / "demo-v0"))


def test_minari_names_are_checked(dataset, minari_home):
    with pytest.raises(ValueError, match="not a Minari dataset id"):
        save_data("minari:no-version", dataset)
    with pytest.raises(FileNotFoundError, match="no local Minari dataset 'absent/data-v0'"):
        load_data("minari:absent/data-v0")
    # namespaces nest, as in Minari's own ids (mujoco/hopper/expert-v0)
    save_data("minari:aquaml-test/hopper/expert-v0", dataset)
    assert_same(dataset, load_data("minari:aquaml-test/hopper/expert-v0"))


def minari_collected(dataset_id: str, episodes: int = 3):
    """A dataset written by Minari's own DataCollector: random actions on Pendulum."""
    import minari

    env = minari.DataCollector(gym.make("Pendulum-v1"))
    for e in range(episodes):
        env.reset(seed=e)
        env.action_space.seed(e)
        while True:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.create_dataset(dataset_id=dataset_id, algorithm_name="random")
    env.close()


def test_a_dataset_from_minaris_collector_loads_and_trains_bc(minari_home, tmp_path):
    minari_collected("pendulum/random-v0")
    ds = load_data("minari:pendulum/random-v0")
    assert ds.n_episodes == 3 and ds.n_steps == 600 and ds.truncated.sum() == 3
    assert np.abs(ds.action).max() <= 1.0  # scaled from [-2, 2]
    from aquaml.cli import main

    code = main(["train", "bc", "Pendulum-v1", "--set", "dataset=minari:pendulum/random-v0", "--steps", "40",
                 "--set", "update_times=20", "--set", "display_interval=2", "--set", "hidden_sizes=16",
                 "--run-root", str(tmp_path / "runs")])
    assert code == 0
    config = json.loads(next((tmp_path / "runs").glob("bc_Pendulum-v1/*/config.json")).read_text())
    assert config["dataset"]["episodes"] == 3 and config["dataset"]["steps"] == 600


# -- the original AquaML's folder of .npy files ----------------------------------------------
def test_npy_folder_with_next_observations(tmp_path, dataset):
    t = dataset.transitions()
    for k in ("obs", "pos"):
        np.save(tmp_path / f"{k}.npy", t[f"obs/{k}"])
        np.save(tmp_path / f"next_{k}.npy", t[f"next_obs/{k}"])
    np.save(tmp_path / "actions.npy", t["action"])
    np.save(tmp_path / "rewards.npy", t["reward"])
    np.save(tmp_path / "terminated.npy", t["terminated"])
    np.save(tmp_path / "truncated.npy", t["truncated"])
    loaded = load_data(tmp_path)
    for k in ("observations/obs", "observations/pos", "action", "reward", "terminated", "truncated",
              "episode_lengths"):
        np.testing.assert_array_equal(loaded.arrays()[k], dataset.arrays()[k], err_msg=k)


def test_npy_folder_with_the_originals_mask_drops_each_episodes_last_step(tmp_path):
    obs = np.arange(10, dtype=np.float32).reshape(10, 1)
    mask = np.ones(10)
    mask[[3, 9]] = 0  # episodes of rows 0-3 and 4-9
    np.save(tmp_path / "obs.npy", obs)
    np.save(tmp_path / "action.npy", np.zeros((10, 1)))
    np.save(tmp_path / "reward.npy", np.arange(10.0))
    np.save(tmp_path / "mask.npy", mask)
    with pytest.warns(UserWarning, match="last step is dropped"):
        ds = load_data(tmp_path)
    assert ds.lengths.tolist() == [3, 5]
    np.testing.assert_array_equal(ds.episode(1)["observations"]["obs"][:, 0], [4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(ds.reward, [0, 1, 2, 4, 5, 6, 7, 8])
    assert not ds.terminated.any()  # the kept steps end no episode: their successors are known


def save_npy_folder(folder, eps, ends="done"):
    """The original AquaML's layout, by hand: one row per step, ``next_obs.npy`` beside ``obs.npy``,
    and every end in ``done.npy`` (or ``mask.npy = 1 - done``)."""
    folder.mkdir(exist_ok=True)
    obs = np.concatenate([ep["observations"]["obs"][:-1] for ep in eps])
    nxt = np.concatenate([ep["observations"]["obs"][1:] for ep in eps])
    done = np.concatenate([np.arange(len(ep["action"])) == len(ep["action"]) - 1 for ep in eps])
    np.save(folder / "obs.npy", obs)
    np.save(folder / "next_obs.npy", nxt)
    np.save(folder / "action.npy", np.concatenate([ep["action"] for ep in eps]))
    np.save(folder / "reward.npy", np.concatenate([ep["reward"] for ep in eps]))
    if ends == "done":
        np.save(folder / "done.npy", done.astype(np.float32))
    else:
        np.save(folder / "mask.npy", 1.0 - done)
    return folder


def test_npy_folder_done_ends_at_the_time_limit_are_truncations(tmp_path):
    eps = numbered_episodes([5, 3, 5, 2])
    # a timeouts.npy (D4RL's name) or truncated.npy beside done.npy marks the time limits itself
    for name in ("timeouts", "truncated"):
        folder = save_npy_folder(tmp_path / name, eps)
        timeouts = np.zeros(15, bool)
        timeouts[[4, 14]] = True
        np.save(folder / f"{name}.npy", timeouts)
        ds = load_data(folder)
        assert np.flatnonzero(ds.truncated).tolist() == [4, 14]
        assert np.flatnonzero(ds.terminated).tolist() == [7, 12]
    # terminated.npy beside done.npy: the other ends are time limits
    folder = save_npy_folder(tmp_path / "terminated", eps)
    np.save(folder / "terminated.npy", np.isin(np.arange(15), [7]))
    ds = load_data(folder)
    assert np.flatnonzero(ds.terminated).tolist() == [7]
    assert np.flatnonzero(ds.truncated).tolist() == [4, 12, 14]
    # the limit the data was collected under (e.g. the env's): 5 steps, which episodes 0 and 2 hit
    for ends in ("done", "mask"):
        folder = save_npy_folder(tmp_path / ends, eps, ends)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the limit tells the ends apart: nothing to warn about
            ds = load_data(folder, max_episode_steps=5)
        assert ds.lengths.tolist() == [5, 3, 5, 2]
        # by hand: the ends of the 5-step episodes are time limits, the others terminations
        assert np.flatnonzero(ds.truncated).tolist() == [4, 12]
        assert np.flatnonzero(ds.terminated).tolist() == [7, 14]
        np.testing.assert_array_equal(ds.episode(1)["observations"]["obs"][:, 0], [100, 101, 102, 103])
        assert load_dataset(folder, max_episode_steps=5).truncated.sum() == 2


def test_npy_folder_done_ends_without_a_time_limit_warn_how_many_may_be_time_limits(tmp_path):
    eps = numbered_episodes([5, 3, 5, 2])
    folder = save_npy_folder(tmp_path / "done", eps)
    with pytest.warns(UserWarning, match=r"done.npy cannot tell a time limit from a termination, so all 4 "
                                         r"episode ends are read as terminations; 2 of them close episodes of the "
                                         r"longest length \(5 steps\) and may be time limits"):
        ds = load_data(folder)
    assert np.flatnonzero(ds.terminated).tolist() == [4, 7, 12, 14] and not ds.truncated.any()
    with pytest.warns(UserWarning, match="max_episode_steps = 4; their ends are read as terminations"):
        ds = load_data(folder, max_episode_steps=4)
    assert not ds.truncated.any() and ds.terminated.sum() == 4


def test_transitions_of_three_interleaved_envs_come_oldest_first():
    # by hand: env i's episodes and the step t at which each starts
    lengths = {0: [2, 4, 1], 1: [5, 2], 2: [1, 1, 3, 2]}
    starts = {0: [0, 2, 6], 1: [0, 5], 2: [0, 1, 2, 5]}
    eps = numbered_episodes([T for i in range(3) for T in lengths[i]])  # ids 0-2 env 0, 3-4 env 1, 5-8 env 2
    eps[2]["truncated"][:] = eps[2]["terminated"][:] = False  # unfinished when collection stops at t = 7
    eps[8]["truncated"][:] = eps[8]["terminated"][:] = False
    ids = {0: [0, 1, 2], 1: [3, 4], 2: [5, 6, 7, 8]}
    flat = {}
    for k in ("obs/obs", "next_obs/obs", "action", "reward", "terminated", "truncated"):
        columns = []
        for i in range(3):
            rows = []
            for e in ids[i]:
                ep = eps[e]
                rows.append({"obs/obs": ep["observations"]["obs"][:-1], "next_obs/obs": ep["observations"]["obs"][1:]}
                            .get(k, ep.get(k)))
            columns.append(np.concatenate(rows))
        assert [len(c) for c in columns] == [7, 7, 7]
        flat[k] = np.stack(columns, axis=1).reshape(21, *columns[0].shape[1:])  # row t * 3 + i
    ds = Dataset.from_transitions(flat, n_envs=3)
    # (start, env): (0,0) (0,1) (0,2) (1,2) (2,0) (2,2) (5,1) (5,2) (6,0)
    order = [0, 3, 5, 6, 1, 7, 4, 8, 2]
    assert ds.n_episodes == 9 and ds.lengths.tolist() == [eps[e]["action"].shape[0] for e in order]
    for got, want in enumerate(order):
        assert_episode(ds.episode(got), eps[want])
    assert [starts[i][ids[i].index(e)] for e in order for i in range(3) if e in ids[i]] == [0, 0, 0, 1, 2, 2, 5, 5, 6]
    # max_episodes keeps the oldest: the first four episodes started at t <= 1
    first = ds.select(range(4))
    for got, want in enumerate(order[:4]):
        assert_episode(first.episode(got), eps[want])


def test_transitions_of_two_envs_rebuild_episodes():
    rng = np.random.default_rng(5)
    eps = [episode(T, rng) for T in (3, 2, 4, 1, 4)]
    eps[4]["truncated"][:] = False  # env 1's last episode is unfinished when collection stops
    env0 = Dataset.from_episodes([eps[0], eps[2]]).transitions()
    env1 = Dataset.from_episodes([eps[1], eps[3], eps[4]]).transitions()
    # a vector env writes row t * n_envs + i for env i
    flat = {k: np.stack([env0[k], env1[k]], axis=1).reshape(14, *env0[k].shape[1:]) for k in env0}
    ds = Dataset.from_transitions(flat, n_envs=2)
    # oldest first: env 0 and env 1 start at t = 0, env 1's second episode at t = 2, then both at t = 3
    assert ds.lengths.tolist() == [3, 2, 1, 4, 4]
    for got, want in enumerate([0, 1, 3, 2, 4]):
        np.testing.assert_array_equal(ds.episode(got)["observations"]["obs"], eps[want]["observations"]["obs"])
        np.testing.assert_array_equal(ds.episode(got)["action"], eps[want]["action"])
    assert not ds.terminated.any() and ds.truncated.sum() == 4
    broken = dict(flat)
    broken["next_obs/obs"] = flat["next_obs/obs"].copy()
    broken["next_obs/obs"][0] += 1.0
    with pytest.raises(DatasetError, match=r"env 0: next_obs/obs at row 0 differs from obs/obs of the following row"):
        Dataset.from_transitions(broken, n_envs=2)


# -- recording a trained agent ---------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from aquaml import RLTaskStarter, SACParameters

    root = tmp_path_factory.mktemp("runs")
    params = SACParameters(n_epochs=6, update_interval=50, update_times=5, batch_size=32, mini_buffer_size=100,
                           hidden_sizes=(16,), display_interval=3, calculate_episodes=1, episode_length=40)
    starter = RLTaskStarter("Pendulum-v1", algo_hyperparameter=params, run_root=root, progress=False)
    summary = starter.run()
    starter.close()
    return summary.run_dir


def test_collect_records_the_seeded_evaluation_episodes(trained_run, tmp_path):
    from aquaml.apps.collect import collect
    from aquaml.starter import load_policy

    ds = collect(trained_run, 3, tmp_path / "demo.npz")
    assert ds.n_episodes == 3 and ds.lengths.tolist() == [40, 40, 40] and ds.truncated.sum() == 3
    assert not ds.terminated.any() and ds.metadata["env"] == "Pendulum-v1"
    assert ds.metadata["action_low"] == [-2.0] and ds.metadata["deterministic"] is True
    policy = load_policy(trained_run)
    evaluator = policy.evaluator()
    returns, _ = evaluator(policy.params, 3, first_episode=ds.metadata["first_episode"])
    evaluator.close()
    np.testing.assert_allclose(ds.returns(), returns, rtol=1e-5)  # float32 rewards summed
    # the recorded observations are Pendulum's own: replaying the actions reproduces them
    env = gym.make("Pendulum-v1")
    from aquaml.sampler import episode_seed

    for e in range(3):
        ep = ds.episode(e)
        obs, _ = env.reset(seed=episode_seed(0, 1, ds.metadata["first_episode"] + e))
        np.testing.assert_allclose(ep["observations"]["obs"][0], obs, rtol=1e-6)
        for t, a in enumerate(ep["action"]):
            obs, r, *_ = env.step(2.0 * a)
            np.testing.assert_allclose(ep["observations"]["obs"][t + 1], obs, rtol=1e-5, atol=1e-6)
            assert abs(ep["reward"][t] - r) < 1e-4
    # the final observation of each truncated episode is the true last one (checked above, t = 39)
    again = collect(trained_run, 3)
    assert_same(ds, again)  # seeded: the same episodes every time
    stochastic = collect(trained_run, 3, deterministic=False)
    assert not np.array_equal(stochastic.action, ds.action)
    assert_same(stochastic, collect(trained_run, 3, deterministic=False))


def test_collect_save_load_minari_round_trip(trained_run, tmp_path, minari_home):
    from aquaml.apps.collect import collect

    ds = collect(trained_run, 2, tmp_path / "demo.h5")
    loaded = load_data(tmp_path / "demo.h5")
    assert_same(ds, loaded)
    save_data("minari:aquaml/pendulum-demo-v0", loaded)
    assert_same(ds, load_data("minari:aquaml/pendulum-demo-v0"))


def test_replay_dataset_rebuilds_the_runs_episodes(trained_run):
    from aquaml.starter import replay_dataset

    ds = replay_dataset(trained_run)
    assert ds.n_steps == 300 and ds.lengths.tolist() == [40] * 7 + [20]
    assert ds.truncated.sum() == 7 and ds.metadata["source"] == "replay buffer"


def test_collect_cli_writes_a_dataset(trained_run, tmp_path):
    out = tmp_path / "cli.npz"
    result = subprocess.run([sys.executable, "-m", "aquaml.cli", "collect", str(trained_run), "--episodes", "2",
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "collected 2 episodes (80 steps)" in result.stdout
    assert load_dataset(out).n_episodes == 2
    result = subprocess.run([sys.executable, "-m", "aquaml.cli", "collect", str(trained_run), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--episodes must be a positive number" in result.stderr


def test_recurrent_state_outputs_are_recorded(tmp_path):
    from aquaml import RLTaskStarter, SACParameters
    from aquaml.apps.collect import collect

    params = SACParameters(n_epochs=2, update_interval=20, update_times=1, batch_size=16, mini_buffer_size=20,
                           hidden_sizes=(8,), lstm_size=4, sequence_length=4, display_interval=2,
                           calculate_episodes=1, episode_length=20)
    starter = RLTaskStarter("PendulumNoVel-v1", algo_hyperparameter=params, run_root=tmp_path, progress=False)
    run_dir = starter.run().run_dir
    starter.close()
    ds = collect(run_dir, 1)
    states = set(starter.state_outputs)
    assert states and states <= set(ds.observations)
    # the stored state of step t + 1 is the actor's state output after step t, zeros at reset
    for k in states:
        assert not ds.observations[k][0].any() and ds.observations[k][1:].any()


def test_episode_windows_stop_at_episode_ends():
    from aquaml.data.windows import ends_of, episode_windows, last_steps

    ends = ends_of(np.array([3, 1, 4]))
    np.testing.assert_array_equal(ends, [0, 0, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(last_steps(ends), [2, 2, 2, 3, 7, 7, 7, 7])
    data = {"x": np.arange(8) * 10}
    out = episode_windows(data, last_steps(ends), np.array([[1, 3], [4, 6]]), 3)
    want_x, want_mask = [], []
    for s in (1, 3, 4, 6):  # by hand: steps past the episode's last repeat it, masked
        last = {1: 2, 3: 3, 4: 7, 6: 7}[s]
        want_x.append([10 * min(s + i, last) for i in range(3)])
        want_mask.append([s + i <= last for i in range(3)])
    np.testing.assert_array_equal(out["x"].reshape(4, 3), want_x)
    np.testing.assert_array_equal(out["mask"].reshape(4, 3), want_mask)
