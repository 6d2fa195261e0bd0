"""Import classes named ``module:QualName`` (CLI arguments, ``config.json`` of a run folder).

A run folder records the classes it was built from as import paths, and rebuilding the run
imports them: a run folder from someone else carries code references, so open it only
where you would run its code. Each imported object is checked to be a subclass of what the
caller expects *before* it is instantiated.
"""
from __future__ import annotations

import importlib


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
