import numpy as np
import pytest

import aquaml.tools.checkpoint as ckpt


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, "epoch_1", state={"a": np.arange(3)}, meta={"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "_write_json", crash)  # fails after state.npz was written
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, "epoch_2", state={"a": np.arange(4)}, meta={"epoch": 2})
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest.name == "epoch_1" and not (tmp_path / "epoch_2").exists()
    arrays, meta = ckpt.load_checkpoint(latest)
    assert meta == {"epoch": 1} and list(arrays["a"]) == [0, 1, 2]
    monkeypatch.undo()
    ckpt.save_checkpoint(tmp_path, "epoch_3", state={"a": np.arange(5)}, meta={"epoch": 3})
    assert not list(tmp_path.glob(".tmp-*"))  # the crashed attempt's leftovers are cleaned up
    assert ckpt.latest_checkpoint(tmp_path).name == "epoch_3"


def test_tree_roundtrip_and_mismatch():
    tree = {"w": [np.ones((2, 2), np.float32)], "step": np.int32(3)}
    arrays = ckpt.tree_to_arrays(tree)
    back = ckpt.arrays_to_tree(tree, arrays)
    np.testing.assert_array_equal(back["w"][0], tree["w"][0])
    with pytest.raises(ValueError, match="models differ"):
        ckpt.arrays_to_tree({"w": [np.ones((3, 2), np.float32)], "step": np.int32(3)}, arrays)
    with pytest.raises(KeyError, match="lacks"):
        ckpt.arrays_to_tree({"v": np.ones(1)}, arrays)


def test_pickled_arrays_are_refused(tmp_path):
    (tmp_path / "epoch_1").mkdir()
    np.savez(tmp_path / "epoch_1" / "state.npz", bad=np.array([object()], dtype=object))
    (tmp_path / "epoch_1" / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match="pickle"):
        ckpt.load_checkpoint(tmp_path / "epoch_1")
