import hashlib
import json
import warnings

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


def _two_checkpoints(directory):
    for epoch in (1, 2):
        ckpt.save_checkpoint(directory, f"epoch_{epoch}", state={"a": np.arange(epoch + 2)}, meta={"epoch": epoch},
                             extra={"buffer": {"x": np.ones(1000)}})
    return directory / "epoch_1", directory / "epoch_2"


def test_checkpoint_has_a_manifest_of_every_file(tmp_path):
    class Fn:  # stands in for a ModelFunction: Keras writes the weights file itself
        def save_weights(self, path, params):
            with open(path, "wb") as f:
                f.write(b"weights")

    path = ckpt.save_checkpoint(tmp_path, "epoch_1", state={"a": np.arange(3)}, meta={"epoch": 1},
                                models={"actor": (Fn(), None)})
    manifest = json.loads((path / "manifest.json").read_text())["files"]
    assert sorted(manifest) == ["meta.json", "models/actor.weights.h5", "state.npz"]
    assert manifest["models/actor.weights.h5"] == {"size": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("damage, reason", [
    (lambda p: _truncate(p / "buffer.npz"), "buffer.npz has .* bytes"),
    (lambda p: (p / "state.npz").unlink(), "state.npz is missing"),
    (lambda p: _flip_last_byte(p / "state.npz"), "state.npz does not match its SHA-256"),
    (lambda p: (p / "manifest.json").write_text('{"files": {"meta.js'), "manifest.json is unreadable"),
    (lambda p: (p / "manifest.json").write_text('{"files": {}}'), "manifest.json is corrupt"),
])
def test_damaged_latest_falls_back_to_previous_complete_checkpoint(tmp_path, damage, reason):
    first, second = _two_checkpoints(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ckpt.latest_checkpoint(tmp_path) == second
    damage(second)
    with pytest.warns(UserWarning, match=f"{second} is damaged \\({reason}.*using the previous complete "
                                         f"checkpoint {first}"):
        assert ckpt.latest_checkpoint(tmp_path) == first
    arrays, meta = ckpt.load_checkpoint(first)
    assert meta == {"epoch": 1} and list(arrays["a"]) == [0, 1, 2]
    _truncate(first / "meta.json")
    with pytest.warns(UserWarning, match="no older complete checkpoint"):
        assert ckpt.latest_checkpoint(tmp_path) is None


def test_damaged_pointer_falls_back_to_newest_complete_checkpoint(tmp_path):
    _, second = _two_checkpoints(tmp_path)
    (tmp_path / "latest").write_bytes(b"\xff\x00")
    with pytest.warns(UserWarning, match=f"using the previous complete checkpoint {second}"):
        assert ckpt.latest_checkpoint(tmp_path) == second


def test_checkpoint_without_manifest_still_loads(tmp_path):
    """Checkpoints written before manifests existed count as complete when meta.json exists."""
    _, second = _two_checkpoints(tmp_path)
    (second / "manifest.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ckpt.latest_checkpoint(tmp_path) == second
    assert ckpt.load_checkpoint(second)[1] == {"epoch": 2}


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
