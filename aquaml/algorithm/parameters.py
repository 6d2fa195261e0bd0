"""Shared machinery for algorithm parameter dataclasses: aliases, checks, CLI parsing."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Mapping

import numpy as np


class Parameters:
    """Mixin for ``@dataclass`` parameter classes.

    Subclasses may declare ``ALIASES = {'seed_name': 'field_name'}`` so the seed's
    spellings keep working; any other unknown name raises ``TypeError`` naming it.
    """

    ALIASES: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any):
        """Build from keyword arguments, accepting aliases and rejecting unknown names."""
        names = cls.field_names()
        resolved: dict[str, Any] = {}
        unknown = []
        for key, value in kwargs.items():
            target = cls.ALIASES.get(key, key)
            if target not in names:
                unknown.append(key)
                continue
            if target in resolved:
                raise TypeError(f"{cls.__name__}: {key!r} and another alias both set {target!r}")
            resolved[target] = value
        if unknown:
            valid = sorted(set(names) | set(cls.ALIASES))
            raise TypeError(f"{cls.__name__} got unknown parameter(s) {unknown}; valid names: {', '.join(valid)}")
        return cls(**resolved)

    def check_types(self) -> None:
        """Coerce and check each field against its annotation: ints whole, floats finite, bools bools."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, (kind, optional) = getattr(self, f.name), _unwrap_optional(hints[f.name])
            if value is None and optional:
                continue
            where = f"{type(self).__name__}.{f.name}"
            number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            if kind is bool:
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"{where} must be True or False, got {value!r}")
                setattr(self, f.name, bool(value))
            elif kind is int:
                if not number or not float(value).is_integer():
                    raise TypeError(f"{where} must be a whole number, got {value!r}")
                setattr(self, f.name, int(value))
            elif kind is float:
                if not number or not math.isfinite(float(value)):
                    raise TypeError(f"{where} must be a finite number, got {value!r}")
                setattr(self, f.name, float(value))

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any):
        return type(self).from_kwargs(**{**self.to_dict(), **changes})

    def with_strings(self, assignments: Mapping[str, str]):
        """Apply ``--set key=value`` strings, converting each value to the field's type."""
        hints = typing.get_type_hints(type(self))
        changes = {}
        for key, text in assignments.items():
            target = self.ALIASES.get(key, key)
            if target not in hints:
                valid = sorted(set(self.field_names()) | set(self.ALIASES))
                raise TypeError(f"unknown parameter {key!r}; valid names: {', '.join(valid)}")
            changes[target] = _parse(text, hints[target], key)
        return self.replace(**changes)


def _unwrap_optional(hint) -> tuple[Any, bool]:
    """``int | None`` -> ``(int, True)``; ``float`` -> ``(float, False)``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _parse(text: str, hint, key: str):
    hint, optional = _unwrap_optional(hint)
    if optional and text.lower() in ("none", "null"):
        return None
    base = typing.get_origin(hint) or hint
    try:
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if base is tuple:
            (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis} or {str}
            return tuple(item(v) for v in text.split(",") if v)
        if base is int:
            return int(float(text)) if float(text).is_integer() else int(text)
        return base(text)
    except ValueError:
        raise TypeError(f"parameter {key!r}: cannot read {text!r} as {getattr(hint, '__name__', hint)}") from None


def epochs_for(params, steps: int) -> int:
    """The ``n_epochs`` that make ``steps`` environment steps (rounded up to whole epochs)."""
    return math.ceil(steps / (params.steps_per_env * params.n_envs))


def check_positive(obj, *names: str, allow_none: bool = False) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is None and allow_none:
            continue
        if value is None or not value > 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be positive, got {value!r}")
