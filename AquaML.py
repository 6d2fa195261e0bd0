"""The seed's import paths (``AquaML.BaseClass``, ``AquaML.DataType``, ``AquaML.Tool``,
``AquaML.rlalgo``, ``AquaML.starter``), re-exported from :mod:`aquaml`.

This is a single module file, not an ``AquaML/`` directory: ``AquaML/`` and ``aquaml/`` differ
only in case, and case-insensitive file systems (the defaults on macOS and Windows) merge them.
A module with a ``__path__`` acts as a package, so ``import AquaML.BaseClass`` finds the
submodules in ``aquaml/seed/``.
"""
import importlib as _importlib
import os as _os

import aquaml as _aquaml  # selects Keras' JAX backend first

__path__ = [_os.path.join(_os.path.dirname(_aquaml.__file__), "seed")]
__package__ = __name__
if __spec__ is not None:  # keep the spec consistent with a package's
    __spec__.submodule_search_locations = list(__path__)

_SUBMODULES = ("BaseClass", "DataType", "Tool", "rlalgo", "starter")


def __getattr__(name: str):
    # ``import AquaML; AquaML.rlalgo`` works like it did with the seed's package.
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
