"""Imports: classes named ``module:QualName`` (CLI arguments, ``config.json`` of a run folder), and
the optional packages of the extras.

A run folder records the classes it was built from as import paths, and rebuilding the run
imports them: a run folder from someone else carries code references, so open it only
where you would run its code. Each imported object is checked to be a subclass of what the
caller expects *before* it is instantiated.

An optional package (the extras of ``pyproject.toml``: ``tune``, ``plot``, ``deploy``, ``mpi``,
``mujoco``) is imported through :func:`optional_import`, or checked up front by :func:`require`;
when it is missing, :class:`MissingExtra` says in one line which extra installs it, and the
command line prints that line instead of a traceback (:func:`missing_extra`).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Iterable

#: optional top-level module -> the extra that installs it (a caller may name another extra that has it too)
EXTRAS = {"optuna": "tune", "yaml": "tune", "sqlalchemy": "tune", "matplotlib": "plot", "imageio": "plot",
          "imageio_ffmpeg": "plot", "rosbags": "plot", "pygame": "plot", "onnx": "deploy", "onnxruntime": "deploy",
          "mpi4py": "mpi", "mujoco": "mujoco"}


class MissingExtra(ModuleNotFoundError):
    """An optional package is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, what: str = "", extra: str | None = None) -> None:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top)
        how = f'pip install "aquaml[{extra}]"' if extra else f"pip install {top}"
        super().__init__(f"{what} needs {top}: {how}" if what else f"{top} is not installed: {how}", name=top)


def installed(module: str) -> bool:
    """Whether ``module`` (a top-level name) can be imported, without importing it."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def require(modules: Iterable[str], what: str, extra: str | None = None) -> None:
    """Raise :class:`MissingExtra` for the first of ``modules`` that is not installed, before any
    work starts (nothing is imported); ``what`` needs them, e.g. ``'aquaml tune'``."""
    for module in modules:
        if not installed(module.split(".")[0]):
            raise MissingExtra(module, what, extra)


def optional_import(module: str, what: str = "", extra: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or :class:`MissingExtra` when its package is not
    installed (a package that is installed but fails to import raises its own error)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtra(module, what, extra) from None


def missing_extra(error: BaseException) -> MissingExtra | None:
    """The :class:`MissingExtra` that ``error`` amounts to: itself, a ``ModuleNotFoundError`` of an
    optional package, or Gymnasium's ``DependencyNotInstalled`` naming one (pygame renders the
    classic-control tasks, mujoco runs the MuJoCo ones); None for any other error."""
    if isinstance(error, MissingExtra):
        return error
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.split(".")[0] in EXTRAS:
        return MissingExtra(error.name)
    if type(error).__name__ == "DependencyNotInstalled":  # gymnasium's, by name: the tools import no gymnasium
        text = str(error).lower()
        return next((MissingExtra(m, "this environment") for m in ("pygame", "mujoco") if m in text), None)
    return None


def qualname(obj) -> str | None:
    """``module:qualname`` of a class (or an instance's class) that can be imported again, else None."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = getattr(cls, "__module__", None)
    if module in (None, "__main__") or "<locals>" in cls.__qualname__:
        return None
    return f"{module}:{cls.__qualname__}"


def import_class(path: str, what: str, bases: tuple[type, ...] = ()) -> type:
    """Import ``module:QualName`` and check it is a class deriving from one of ``bases``.

    Args:
        path: ``'package.module:Class'`` (``'package.module:Outer.Inner'`` for nested classes).
        what: what the class is for, used in error messages (e.g. ``'the actor model'``).
        bases: accepted base classes; empty accepts any class.
    """
    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"{what} {path!r} is not an import path of the form 'package.module:ClassName'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"{what} {path!r}: cannot import module {module_name!r} ({e})") from e
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"{what} {path!r}: {module_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"{what} {path!r} is a {type(obj).__name__}, not a class")
    if bases and not issubclass(obj, bases):
        names = " or ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)
        raise TypeError(f"{what} {path!r} is not a subclass of {names}; refusing to instantiate it")
    return obj
