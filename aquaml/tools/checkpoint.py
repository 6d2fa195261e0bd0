"""Atomic checkpoints: Keras weight files, a flat ``.npz`` of the training state, JSON meta.

Nothing is pickled: arrays go through ``np.load(allow_pickle=False)`` and the rest is JSON.
A checkpoint is written into a temporary folder and renamed into place, then the
``latest`` pointer is replaced atomically, so a crash leaves either the old or the new
checkpoint, never half of one.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

LATEST = "latest"


def tree_to_arrays(tree) -> dict[str, np.ndarray]:
    """Flatten a pytree into ``{key path: numpy array}``."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def arrays_to_tree(template, arrays: Mapping[str, np.ndarray]):
    """Rebuild a pytree shaped like ``template`` from :func:`tree_to_arrays` output."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in paths:
        key = jax.tree_util.keystr(path)
        if key not in arrays:
            raise KeyError(f"checkpoint lacks {key}; it was written by a different model or algorithm")
        value = arrays[key]
        if value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise ValueError(f"checkpoint entry {key} is {value.dtype}{value.shape}, expected "
                             f"{np.asarray(leaf).dtype}{np.shape(leaf)}: the models differ from the checkpoint's")
        leaves.append(jax.numpy.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, [leaf for _, leaf in zip(paths, leaves)])


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(directory: str | os.PathLike, tag: str, *, state: Mapping[str, np.ndarray],
                    meta: Mapping[str, Any], models: Mapping[str, tuple[Any, Any]] = {},
                    extra: Mapping[str, Mapping[str, np.ndarray]] = {}) -> Path:
    """Write checkpoint ``directory/tag`` and point ``directory/latest`` at it.

    Args:
        state: flat arrays of the training state (see :func:`tree_to_arrays`).
        meta: JSON-serialisable counters, RNG states, history.
        models: ``role -> (ModelFunction, params)``, saved as ``models/<role>.weights.h5``.
        extra: more ``name -> flat arrays`` files, e.g. the replay buffer.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".tmp-*"):  # left by a crash during an earlier save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = directory / f".tmp-{uuid.uuid4().hex}"
    (tmp / "models").mkdir(parents=True)
    for role, (fn, params) in models.items():
        fn.save_weights(str(tmp / "models" / f"{role}.weights.h5"), params)
    _write_npz(tmp / "state.npz", state)
    for name, arrays in extra.items():
        _write_npz(tmp / f"{name}.npz", arrays)
    _write_json(tmp / "meta.json", dict(meta))
    final = directory / tag
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = directory / f".{LATEST}.tmp"
    pointer.write_text(tag)
    os.replace(pointer, directory / LATEST)
    return final


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.exists():
        return None
    path = directory / pointer.read_text().strip()
    return path if (path / "meta.json").exists() else None


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    return load_npz(path / "state.npz"), json.loads((path / "meta.json").read_text())
