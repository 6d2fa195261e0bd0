"""``save_data`` / ``load_data``: named arrays and datasets on disk, never pickled.

Where data lives, by the path's form:

* ``x.npz`` (or no suffix: ``.npz`` is added), ``x.h5`` / ``x.hdf5``: AquaML's files. A
  :class:`~aquaml.data.dataset.Dataset` is stored as its flat arrays plus a JSON header;
  a plain dict of arrays is stored as it is (the seed's supervised-learning use).
* ``minari:NAME`` (e.g. ``minari:pendulum/expert-v0``): a Minari dataset under
  ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``), read without network access;
  a directory holding Minari's ``data/main_data.hdf5`` loads too.
* a directory of ``<name>.npy`` files: the original AquaML's expert-data layout (read only;
  ``max_episode_steps`` tells its time-limit ends from terminations, see :func:`from_npy_folder`).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from aquaml.data.dataset import STEP_FIELDS, Dataset, DatasetError
from aquaml.data.minari_io import from_minari, to_minari

_HDF5 = (".h5", ".hdf5")
MINARI_PREFIX = "minari:"
HEADER = "aquaml_dataset"  #: the key (npz) or attribute (HDF5) that marks a Dataset file
FORMAT = 1


def _resolve(path: str | os.PathLike) -> Path:
    """``x`` and ``x.data`` become ``x.npz`` / ``x.data.npz``; HDF5 and npz names stay."""
    path = Path(path)
    if path.suffix in _HDF5 or path.suffix == ".npz":
        return path
    return path.with_name(path.name + ".npz")


def save_data(path: str | os.PathLike, data: Dataset | Mapping[str, np.ndarray]) -> Path | str:
    """Write a :class:`Dataset` or named arrays (e.g. for supervised or expert learning).

    The format follows the path (see the module docstring); ``minari:NAME`` needs a Dataset.
    Files are written under a temporary name and renamed, so readers never see half a file.
    """
    if str(path).startswith(MINARI_PREFIX):
        if not isinstance(data, Dataset):
            raise TypeError("save_data: a Minari dataset is written from an aquaml.data.Dataset, not a dict")
        return to_minari(data, str(path)[len(MINARI_PREFIX):])
    path = _resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    header = None
    if isinstance(data, Dataset):
        arrays, header = data.arrays(), json.dumps({"format": FORMAT, "metadata": data.metadata})
    else:
        arrays = {str(k): np.asarray(v) for k, v in data.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"save_data: {k!r} is an object array; only numeric arrays are saved")
    try:
        if path.suffix in _HDF5:
            import h5py

            with h5py.File(tmp, "w") as f:
                for k, v in arrays.items():
                    f.create_dataset(k, data=v)
                if header is not None:
                    f.attrs[HEADER] = header
        else:
            if header is not None:
                arrays = {**arrays, HEADER: np.array(header)}
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_data(path: str | os.PathLike, max_episode_steps: int | None = None) -> Dataset | dict[str, np.ndarray]:
    """Read what :func:`save_data` wrote: a :class:`Dataset` for datasets (AquaML files written
    from one, Minari datasets, a directory of ``.npy`` files), else a dict of named arrays.

    ``max_episode_steps``: the time limit the data was collected under; only a ``.npy`` folder
    whose ends come from ``done.npy``/``mask.npy`` reads it (see :func:`from_npy_folder`).
    """
    text = str(path)
    if text.startswith(MINARI_PREFIX) or _is_minari_dir(Path(text)):
        return from_minari(text[len(MINARI_PREFIX):] if text.startswith(MINARI_PREFIX) else Path(text))
    if Path(text).is_dir():
        return from_npy_folder(Path(text), max_episode_steps)
    path = _resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file {path}")
    arrays, header = _read(path)
    if header is None:
        return arrays
    return _dataset_from_arrays(arrays, header, path)


def load_dataset(path: str | os.PathLike, max_episode_steps: int | None = None) -> Dataset:
    """Like :func:`load_data`, but the result must be a :class:`Dataset`."""
    data = load_data(path, max_episode_steps)
    if not isinstance(data, Dataset):
        try:  # named arrays in the dataset layout, written by hand
            return _dataset_from_arrays(data, json.dumps({"format": FORMAT, "metadata": {}}), path)
        except DatasetError as e:
            raise DatasetError(f"{path} holds named arrays, not a dataset ({e})") from None
    return data


def _read(path: Path) -> tuple[dict[str, np.ndarray], str | None]:
    if path.suffix in _HDF5:
        import h5py

        out: dict[str, np.ndarray] = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
            header = f.attrs.get(HEADER)
        return out, (header.decode() if isinstance(header, bytes) else header)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = arrays.pop(HEADER, None)
    return arrays, (str(header) if header is not None else None)


def _dataset_from_arrays(arrays: Mapping[str, np.ndarray], header: str, path) -> Dataset:
    info = json.loads(header)
    if info.get("format") != FORMAT:
        raise DatasetError(f"{path}: dataset format {info.get('format')!r} is not {FORMAT}; "
                           "this AquaML version cannot read it")
    obs = {k[len("observations/"):]: v for k, v in arrays.items() if k.startswith("observations/")}
    missing = [k for k in (*STEP_FIELDS, "episode_lengths") if k not in arrays]
    if missing or not obs:
        raise DatasetError(f"{path} lacks {', '.join(missing) or 'observations/<name> arrays'}")
    return Dataset(obs, *(arrays[k] for k in STEP_FIELDS), lengths=arrays["episode_lengths"],
                   metadata=info.get("metadata", {}))


def _is_minari_dir(path: Path) -> bool:
    return (path / "data" / "main_data.hdf5").exists() or (path / "main_data.hdf5").exists()


# -- the original AquaML's layout: a directory of <name>.npy files ---------------------------
_ALIASES = {"actions": "action", "rewards": "reward", "terminations": "terminated", "truncations": "truncated",
            "timeout": "truncated", "timeouts": "truncated", "dones": "done", "lengths": "episode_lengths"}
_NOT_OBS = {"action", "reward", "terminated", "truncated", "done", "mask", "episode_lengths"}


def from_npy_folder(folder: Path, max_episode_steps: int | None = None) -> Dataset:
    """A directory of ``<name>.npy`` arrays, one row per step.

    ``action.npy`` and ``reward.npy`` are required; every other name is an observation, and
    ``next_<name>.npy`` its next observation. Episode ends come from ``terminated.npy`` and
    ``truncated.npy`` (or ``timeout(s).npy``), or ``done.npy`` / ``mask.npy`` (the original's
    ``1 - done``), or ``episode_lengths.npy`` (time limits); with none of these the rows are
    one episode. Without ``next_<name>.npy`` the next observation is the following row, so each
    episode's last step, whose next observation is unknown, is dropped.

    ``done``/``mask`` mark every episode end alike. An end is a time limit (a truncation:
    targets bootstrap through it, and adversarial imitation pays nothing for reaching it) when
    ``truncated.npy``/``timeout(s).npy`` flags it, or else when its episode has exactly
    ``max_episode_steps`` rows (the limit the data was collected under; a real termination on
    that last allowed step is then read as a time limit too); ``terminated.npy`` beside
    ``done.npy`` makes its other ends time limits. Any other end is a termination, and when
    nothing tells them apart a warning names how many ends may be time limits.
    """
    files = {p.stem: p for p in sorted(folder.glob("*.npy"))}
    if not files:
        raise DatasetError(f"{folder} holds no .npy files (nor a Minari dataset)")
    arrays = {}
    for stem, p in files.items():
        name = _ALIASES.get(stem, stem)
        if name in arrays:
            raise DatasetError(f"{folder}: {p.name} and another file both give {name!r}")
        arrays[name] = np.load(p, allow_pickle=False)
    for k in ("action", "reward"):
        if k not in arrays:
            raise DatasetError(f"{folder} lacks {k}.npy (it holds {', '.join(sorted(files))})")
    names = [k for k in arrays if k not in _NOT_OBS and not k.startswith("next_")]
    if not names:
        raise DatasetError(f"{folder} holds no observation arrays (any <name>.npy besides action, reward and ends)")
    n = len(arrays["action"])
    for k, v in arrays.items():
        if k != "episode_lengths" and len(v) != n:
            raise DatasetError(f"{folder}: {k}.npy has {len(v)} rows, action.npy has {n}")
    terminated, truncated, ambiguous = _ends(arrays, n, folder, max_episode_steps)
    meta = {"source": str(folder), "layout": "npy folder"}
    if max_episode_steps is not None:
        meta["max_episode_steps"] = int(max_episode_steps)
    flat = {"action": arrays["action"], "reward": np.asarray(arrays["reward"]).reshape(n),
            "terminated": terminated, "truncated": truncated}
    if all(f"next_{k}" in arrays for k in names):
        if ambiguous:
            warnings.warn(ambiguous, stacklevel=3)
        flat.update({f"obs/{k}": arrays[k] for k in names})
        flat.update({f"next_obs/{k}": arrays[f"next_{k}"] for k in names})
        return Dataset.from_transitions(flat, metadata=meta)
    episodes = []
    ends = np.flatnonzero(terminated | truncated) + 1
    for seg in np.split(np.arange(n), ends):
        if len(seg) < 2:
            continue
        steps = seg[:-1]  # the last row only serves as the final observation
        # the kept steps end no episode: the data stops before the episode's real end
        episodes.append({"observations": {k: arrays[k][seg] for k in names},
                         **{k: flat[k][steps] for k in STEP_FIELDS}})
    warnings.warn(f"{folder} has no next_<name>.npy files: each episode's last step is dropped (its next "
                  "observation is unknown)", stacklevel=3)
    return Dataset.from_episodes(episodes, meta)


def _ends(arrays: Mapping[str, np.ndarray], n: int, folder: Path,
          max_episode_steps: int | None = None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(terminated, truncated, warning)``: each row's end flags, and a warning (else None)
    when ``done``/``mask`` ends may be time limits that nothing marks."""
    flag = lambda k: np.asarray(arrays[k]).reshape(n).astype(bool)  # noqa: E731
    zeros = np.zeros(n, bool)
    if "terminated" in arrays and "truncated" in arrays:  # both kinds of end flagged: done/mask add nothing
        return flag("terminated"), flag("truncated"), None
    if "done" in arrays or "mask" in arrays:
        if "done" in arrays and "mask" in arrays and not np.array_equal(flag("done"), ~flag("mask")):
            raise DatasetError(f"{folder}: done.npy and mask.npy disagree (mask must be 1 - done)")
        done = flag("done") if "done" in arrays else ~flag("mask")
        source = "done.npy" if "done" in arrays else "mask.npy"
        if "truncated" in arrays:  # the time limits are marked: every other end is a termination
            truncated = flag("truncated")
            return done & ~truncated, truncated, None
        if "terminated" in arrays:  # the terminations are marked: every other end is a time limit
            terminated = flag("terminated")
            return terminated, done & ~terminated, None
        ends = np.flatnonzero(done)
        lengths = np.diff(np.concatenate([[-1], ends]))  # rows of the episode each end closes
        if max_episode_steps is not None:
            if max_episode_steps <= 0:
                raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
            at_limit = ends[lengths == max_episode_steps]
            truncated = zeros.copy()
            truncated[at_limit] = True
            longer = int((lengths > max_episode_steps).sum())
            if longer:
                warnings.warn(f"{folder}: {longer} episode(s) in {source} run longer than max_episode_steps = "
                              f"{max_episode_steps}; their ends are read as terminations (is the limit right?)",
                              stacklevel=4)
            return done & ~truncated, truncated, None
        warning = None
        if len(ends):
            longest = int(lengths.max())
            maybe = int((lengths == longest).sum())
            warning = (f"{folder}: {source} cannot tell a time limit from a termination, so all {len(ends)} "
                       f"episode ends are read as terminations; {maybe} of them close episodes of the longest "
                       f"length ({longest} steps) and may be time limits. Give the limit the data was "
                       f"collected under (load_data(path, max_episode_steps=...)) or add truncated.npy "
                       f"(or timeouts.npy) flagging the time-limit ends")
        return done, zeros, warning
    if "terminated" in arrays or "truncated" in arrays:
        return (flag("terminated") if "terminated" in arrays else zeros,
                flag("truncated") if "truncated" in arrays else zeros, None)
    if "episode_lengths" in arrays:
        lengths = np.asarray(arrays["episode_lengths"], np.int64)
        if lengths.sum() != n:
            raise DatasetError(f"{folder}: episode_lengths.npy adds up to {lengths.sum()}, action.npy has {n} rows")
        truncated = zeros.copy()
        truncated[np.cumsum(lengths) - 1] = True
        return zeros, truncated, None
    return zeros, zeros.copy(), None


def describe(dataset: Dataset) -> dict[str, Any]:
    """A short summary (episodes, steps, return statistics, fields) for logs and the CLI."""
    returns = dataset.returns()
    return {"episodes": dataset.n_episodes, "steps": dataset.n_steps,
            "return_mean": float(returns.mean()), "return_std": float(returns.std()),
            "observations": {k: list(v.shape[1:]) for k, v in dataset.observations.items()},
            "action": list(dataset.action.shape[1:])}
