import numpy as np
import pytest

from aquaml.data import DataInfo, ReplayBuffer, flatten, load_data, nest, save_data


def test_datainfo_seed_literal_forms():
    info = DataInfo(names=("obs",), shapes=((3,)), dtypes=np.float32)
    assert info.shape_dict == {"obs": (3,)}
    both = DataInfo(names=("obs", "pos"), shapes=((3,), (2,)), dtypes=np.float32)
    assert both.shape_dict == {"obs": (3,), "pos": (2,)}
    assert both.type_dict == {"obs": np.float32, "pos": np.float32}
    mixed = DataInfo(("a", "b"), ((1,), (2, 2)), (np.float32, np.int64))
    assert mixed.type_dict["b"] == np.int64
    assert DataInfo.from_json(mixed.to_json()) == mixed


@pytest.mark.parametrize("kwargs, match", [
    (dict(names=("a", "b"), shapes=(3,)), "one shape per name"),
    (dict(names=("a", "a"), shapes=((1,), (1,))), "unique"),
    (dict(names=("a",), shapes=((1,),), dtypes=(np.float32, np.float32)), "dtypes"),
    (dict(names=("a",), shapes=((0,),)), "positive"),
    (dict(names=("a", "b"), shapes=3), "one shape"),
])
def test_datainfo_rejects_ambiguous_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataInfo(**kwargs)


def test_nest_and_flatten_roundtrip():
    flat = {"obs/pos": np.zeros((2, 2)), "obs/vel": np.ones((2, 1)), "action": np.zeros((2, 1))}
    nested = nest(flat)
    assert set(nested) == {"obs", "action"} and set(nested["obs"]) == {"pos", "vel"}
    assert flatten(nested).keys() == flat.keys()


def _fields():
    return {"obs/x": ((2,), np.float32), "reward": ((), np.float32)}


def test_replay_buffer_vectorised_insert_wraps_around():
    buf = ReplayBuffer(5, _fields())
    buf.add({"obs/x": np.arange(6, dtype=np.float32).reshape(3, 2), "reward": np.array([0, 1, 2], np.float32)})
    assert len(buf) == 3 and buf.ptr == 3
    buf.add({"obs/x": np.zeros((4, 2), np.float32), "reward": np.array([3, 4, 5, 6], np.float32)})
    assert len(buf) == 5 and buf.ptr == 2
    # slots 0,1 overwritten by rewards 5,6; slot 2 keeps reward 2
    np.testing.assert_array_equal(buf.data["reward"], [5, 6, 2, 3, 4])


def test_replay_buffer_samples_only_filled_region():
    buf = ReplayBuffer(1000, _fields())
    buf.add({"obs/x": np.ones((10, 2), np.float32), "reward": np.arange(1, 11, dtype=np.float32)})
    sample = buf.sample(np.random.default_rng(0), 64, n_batches=7)
    assert sample["reward"].shape == (7, 64) and sample["obs/x"].shape == (7, 64, 2)
    assert sample["reward"].min() >= 1  # never the zero-filled, unwritten slots
    assert set(np.unique(sample["reward"])) == set(range(1, 11))


def test_replay_buffer_checks_fields_and_shapes():
    buf = ReplayBuffer(4, _fields())
    with pytest.raises(KeyError, match="missing"):
        buf.add({"obs/x": np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match="obs/x"):
        buf.add({"reward": np.ones(1, np.float32), "obs/x": np.zeros((1, 3), np.float32)})
    assert len(buf) == 0 and not buf.data["reward"].any()  # nothing was half-written
    with pytest.raises(ValueError, match="empty"):
        buf.sample(np.random.default_rng(0), 2)


def test_replay_buffer_state_roundtrip():
    buf = ReplayBuffer(8, _fields())
    buf.add({"obs/x": np.random.rand(11, 2).astype(np.float32), "reward": np.arange(11, dtype=np.float32)})
    other = ReplayBuffer(8, _fields())
    other.load_state_dict(buf.state_dict())
    assert (other.ptr, other.size) == (buf.ptr, buf.size)
    for k in buf.data:
        np.testing.assert_array_equal(other.data[k], buf.data[k])


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_save_and_load_data(tmp_path, suffix):
    data = {"obs/pos": np.random.rand(5, 2).astype(np.float32), "reward": np.arange(5.0), "done": np.zeros(5, bool)}
    path = save_data(tmp_path / f"expert{suffix}", data)
    loaded = load_data(path)
    assert loaded.keys() == data.keys()
    for k in data:
        np.testing.assert_array_equal(loaded[k], data[k])
        assert loaded[k].dtype == data[k].dtype
    assert not list(tmp_path.glob("*.tmp"))


def test_load_data_uses_the_same_name_rule(tmp_path):
    path = save_data(tmp_path / "expert", {"x": np.arange(3)})
    assert path.name == "expert.npz"
    np.testing.assert_array_equal(load_data(tmp_path / "expert")["x"], np.arange(3))


def test_replay_buffer_refuses_a_different_capacity():
    buf = ReplayBuffer(4, _fields())
    buf.add({"obs/x": np.zeros((4, 2), np.float32), "reward": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="capacity 4, this one 8"):
        ReplayBuffer(8, _fields()).load_state_dict(buf.state_dict())


def test_save_data_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="object"):
        save_data(tmp_path / "x.npz", {"bad": np.array([{"a": 1}], dtype=object)})
