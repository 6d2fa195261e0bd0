"""Imports: classes named ``module:QualName`` (CLI arguments, ``config.json`` of a run folder), and
the optional packages of the extras.

A module is a dotted name, looked up first in the current directory and then on ``sys.path``
(as ``python -m`` does), or the path of a ``.py`` file (``examples/a2c.py:A2C``). A module found
in the current directory or given as a file is *local*: :func:`portable_reference` and
:func:`qualname` name it by its absolute file path, so the run folder that records it can be
evaluated or resumed from any directory. Installed modules keep their dotted names.

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
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable

#: optional top-level module -> the extra that installs it (a caller may name another extra that has it too)
EXTRAS = {"optuna": "tune", "sqlalchemy": "tune", "matplotlib": "plot", "imageio": "plot",
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


#: local modules imported so far: module name -> its file (absolute)
_LOCAL: dict[str, Path] = {}


def import_without_torch(module: str) -> ModuleType:
    """Import ``module`` (a part of tensorboardX) with ``import torch`` failing inside it.

    tensorboardX imports torch whenever it is installed, only to accept torch tensors; AquaML
    logs floats. Where torch is installed (most RL users' machines) that import alone cost
    3.4 s of every run's start on the 2-core machine. A torch already imported is left alone.
    """
    if module in sys.modules or "torch" in sys.modules:
        return importlib.import_module(module)
    sys.modules["torch"] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        return importlib.import_module(module)
    finally:
        del sys.modules["torch"]


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def _package_root(file: Path) -> tuple[Path, str]:
    """The folder to put on ``sys.path`` for ``file`` and its dotted module name there: the
    folders above it that hold an ``__init__.py`` are its packages."""
    parts = [] if file.stem == "__init__" else [file.stem]
    folder = file.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _installed_elsewhere(top: str) -> bool:
    """Whether ``top`` is importable without the current directory (an installed package, also
    an editable install run from its own repository): then it is not local, and keeps its name."""
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    try:
        return any(getattr(finder, "find_spec", None) and finder.find_spec(top, None) is not None
                   for finder in sys.meta_path)
    finally:
        sys.path[:] = saved


def import_module(spec: str) -> ModuleType:
    """The module ``spec`` names: a dotted name (the current directory first, then ``sys.path``)
    or a ``.py`` file's path (relative to the current directory). A local module's folder stays
    on ``sys.path``, as with ``python -m`` or ``python file.py``, so that it can import its
    neighbours and worker processes find it."""
    root, file = None, None
    if _is_path(spec):
        file = Path(spec).expanduser().resolve()
        if not file.is_file():
            raise ImportError(f"cannot import {spec!r}: no file {file}")
        root, name = _package_root(file)
    else:
        name = spec
        top = name.partition(".")[0]
        if importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) is not None and not _installed_elsewhere(top):
            root = Path.cwd()
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        hint = ""
        if file is None and getattr(e, "name", None) == name.partition(".")[0]:
            hint = (f"; not in the current directory {os.getcwd()} nor on sys.path: give the file's path "
                    "(path/to/module.py:Name) or run from its folder")
        raise ImportError(f"cannot import module {spec!r} ({e}){hint}") from e
    if root is not None:
        found = Path(getattr(module, "__file__", None) or "").resolve()
        if file is not None and found != file:
            raise ImportError(f"cannot import {spec!r}: module {name!r} was already imported from {found}; "
                              "rename one of the two files")
        if found.is_relative_to(root):
            _LOCAL[name] = found
    return module


def portable_reference(spec: str) -> str:
    """``module:Name`` as a run folder records it: a local module becomes its absolute file path
    (``/home/me/envs/reach.py:Reach-v0``), so the reference works from any directory; other
    specs are returned unchanged (the module is imported to find out)."""
    module, sep, name = spec.rpartition(":")
    if not sep or not module:
        return spec
    file = _LOCAL.get(import_module(module).__name__)
    return f"{file}:{name}" if file is not None else spec


def qualname(obj) -> str | None:
    """``module:qualname`` of a class (or an instance's class) that can be imported again, else
    None; a local module (see :func:`import_module`) is named by its file's absolute path."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = getattr(cls, "__module__", None)
    if module in (None, "__main__") or "<locals>" in cls.__qualname__:
        return None
    return f"{_LOCAL.get(module, module)}:{cls.__qualname__}"


def import_class(path: str, what: str, bases: tuple[type, ...] = ()) -> type:
    """Import ``module:QualName`` and check it is a class deriving from one of ``bases``.

    Args:
        path: ``'package.module:Class'`` (``'package.module:Outer.Inner'`` for nested classes), or
            ``'path/to/file.py:Class'``.
        what: what the class is for, used in error messages (e.g. ``'the actor model'``).
        bases: accepted base classes; empty accepts any class.
    """
    module_name, sep, name = path.rpartition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"{what} {path!r} is not an import path of the form 'package.module:ClassName' "
                         "or 'path/to/file.py:ClassName'")
    try:
        obj = import_module(module_name)
    except ImportError as e:
        raise ImportError(f"{what} {path!r}: {e}") from e
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
