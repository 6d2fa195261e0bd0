"""Atomic, durable checkpoints: Keras weight files, a flat ``.npz`` of the training state, JSON meta.

Nothing is pickled: arrays go through ``np.load(allow_pickle=False)`` and the rest is JSON.
A checkpoint is written into a temporary folder and renamed into place, then the
``latest`` pointer is replaced atomically, so a crash leaves either the old or the new
checkpoint, never half of one. Every file and folder involved is fsynced before the
pointer counts as moved, so this also holds across a power loss. ``manifest.json``, the
last file written, records each file's size and SHA-256; :func:`latest_checkpoint` skips a
checkpoint that no longer matches it and falls back to the previous complete one.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

LATEST = "latest"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20  # hashing reads 1 MiB at a time: replay buffers can be hundreds of MB


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


def _fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (creations, renames) durable."""
    if os.name == "nt":  # Windows cannot open a folder to fsync it
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems (network, FUSE) do not fsync folders
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest, buffer = hashlib.sha256(), bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _seal(path: Path) -> dict[str, Any]:
    """fsync ``path`` (Keras writes its files without) and return its manifest record."""
    with open(path, "r+b") as f:
        os.fsync(f.fileno())
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def save_checkpoint(directory: str | os.PathLike, tag: str, *, state: Mapping[str, np.ndarray],
                    meta: Mapping[str, Any], models: Mapping[str, tuple[Any, Any]] = {},
                    extra: Mapping[str, Mapping[str, np.ndarray]] = {}) -> Path:
    """Write checkpoint ``directory/tag`` and point ``directory/latest`` at it, durably.

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
    files = {f.relative_to(tmp).as_posix(): _seal(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
    _write_json(tmp / MANIFEST, {"format": 1, "files": files})
    # the folders' entries must be durable before the rename can publish them
    _fsync_dir(tmp / "models")
    _fsync_dir(tmp)
    final = directory / tag
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(directory)  # the rename, before the pointer can name it
    pointer = directory / f".{LATEST}.tmp"
    with open(pointer, "w") as f:
        f.write(tag)
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, directory / LATEST)
    _fsync_dir(directory)  # only now has `latest` moved
    return final


def _damage(path: Path) -> str | None:
    """Why checkpoint ``path`` is incomplete or damaged, or None if it is complete."""
    if not path.is_dir():
        return "it does not exist"
    manifest = path / MANIFEST
    if not manifest.exists():
        # written before manifests existed: meta.json, written last, shows it is whole
        return None if (path / "meta.json").exists() else f"it has neither {MANIFEST} nor meta.json"
    try:
        entries = [(str(name), int(record["size"]), str(record["sha256"]))
                   for name, record in json.loads(manifest.read_bytes())["files"].items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{MANIFEST} is unreadable ({type(e).__name__}: {e})"
    names = {name for name, _, _ in entries}
    if not {"meta.json", "state.npz"} <= names or any(Path(n).is_absolute() or ".." in Path(n).parts for n in names):
        return f"{MANIFEST} is corrupt (it does not list meta.json and state.npz inside the checkpoint)"
    try:
        for name, size, _ in entries:  # sizes first: cheap, and they catch truncation
            actual = (path / name).stat().st_size
            if actual != size:
                return f"{name} has {actual} bytes, the manifest says {size}"
        for name, _, digest in entries:
            if _sha256(path / name) != digest:
                return f"{name} does not match its SHA-256 in the manifest"
    except FileNotFoundError:
        return f"{name} is missing"
    except OSError as e:
        return f"{name} cannot be read ({e})"
    return None


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None if there is none.

    That is the one ``latest`` names; if it is damaged (a file missing, truncated or changed,
    or the manifest unreadable), the newest complete older ``epoch_*`` one, with a warning.
    Checkpoints from before manifests count as complete when their ``meta.json`` exists.
    """
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.exists():
        return None
    try:
        tag = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError):
        tag = ""
    if tag and tag == Path(tag).name and tag not in (".", ".."):
        named, problem = directory / tag, _damage(directory / tag)
        if problem is None:
            return named
    else:
        named, problem = pointer, f"it holds {tag!r}, not a checkpoint name"
    # only checkpoints older than the named one were ever committed as `latest`
    older = sorted((p for p in directory.glob("epoch_*")
                    if p.is_dir() and p != named and not (tag.startswith("epoch_") and p.name > tag)), reverse=True)
    for path in older:
        if _damage(path) is None:
            warnings.warn(f"checkpoint {named} is damaged ({problem}); using the previous complete checkpoint "
                          f"{path} instead", stacklevel=2)
            return path
    warnings.warn(f"checkpoint {named} is damaged ({problem}) and {directory} holds no older complete "
                  "checkpoint", stacklevel=2)
    return None


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    return load_npz(path / "state.npz"), json.loads((path / "meta.json").read_text())
