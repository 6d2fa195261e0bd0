"""``save_data`` / ``load_data``: named datasets on disk (``.npz`` or HDF5), never pickled."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

_HDF5 = (".h5", ".hdf5")


def _resolve(path: str | os.PathLike) -> Path:
    """``x`` and ``x.data`` become ``x.npz`` / ``x.data.npz``; HDF5 and npz names stay."""
    path = Path(path)
    if path.suffix in _HDF5 or path.suffix == ".npz":
        return path
    return path.with_name(path.name + ".npz")


def save_data(path: str | os.PathLike, data: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays, e.g. collected transitions for expert or supervised learning.

    The format follows the suffix: ``.h5``/``.hdf5`` for HDF5, anything else ``.npz``.
    The file is written under a temporary name and renamed, so readers never see half a file.
    """
    path = _resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    arrays = {str(k): np.asarray(v) for k, v in data.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"save_data: {k!r} is an object array; only numeric arrays are saved")
    if path.suffix in _HDF5:
        import h5py

        with h5py.File(tmp, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
    else:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def load_data(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read what :func:`save_data` wrote (same name rules), as a dict of numpy arrays."""
    path = _resolve(path)
    if path.suffix in _HDF5:
        import h5py

        out: dict[str, np.ndarray] = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
        return out
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
