"""``DataInfo``: names, shapes and dtypes of a group of named arrays."""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

Shape = tuple[int, ...]


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in value)


class DataInfo:
    """Describes named arrays, e.g. the observations an environment returns.

    Accepts the seed's literal forms: ``shapes=((3,))`` (which Python reads as ``(3,)``)
    for a single name, and one dtype for all names or one per name. Shapes exclude the
    leading batch dimension.
    """

    def __init__(self, names: Sequence[str] | str, shapes, dtypes=np.float32):
        if isinstance(names, str):
            names = (names,)
        names = tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"DataInfo names must be non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"DataInfo names must be unique, got {names!r}")
        if _is_shape(shapes):
            if len(names) != 1:
                raise ValueError(
                    f"DataInfo got one shape {tuple(shapes)} for {len(names)} names {names}; "
                    "give one shape per name, e.g. shapes=((3,), (2,))"
                )
            shapes = (shapes,)
        if not isinstance(shapes, (tuple, list)) or not all(_is_shape(s) for s in shapes) or len(shapes) != len(names):
            raise ValueError(f"DataInfo needs one shape (a tuple of ints) per name: names={names}, shapes={shapes!r}")
        shapes = tuple(tuple(int(d) for d in s) for s in shapes)
        if any(d <= 0 for s in shapes for d in s):
            raise ValueError(f"DataInfo shapes must have positive dimensions, got {shapes}")
        if isinstance(dtypes, (list, tuple)):
            if len(dtypes) != len(names):
                raise ValueError(f"DataInfo got {len(dtypes)} dtypes for {len(names)} names")
            dtypes = tuple(np.dtype(d) for d in dtypes)
        else:
            dtypes = (np.dtype(dtypes),) * len(names)
        self.names: tuple[str, ...] = names
        self.shapes: tuple[Shape, ...] = shapes
        self.dtypes: tuple[np.dtype, ...] = dtypes

    @property
    def shape_dict(self) -> dict[str, Shape]:
        return dict(zip(self.names, self.shapes))

    @property
    def type_dict(self) -> dict[str, np.dtype]:
        return dict(zip(self.names, self.dtypes))

    def items(self) -> Iterable[tuple[str, Shape, np.dtype]]:
        return zip(self.names, self.shapes, self.dtypes)

    def merged(self, extra: Mapping[str, Shape], dtype=np.float32) -> "DataInfo":
        """A copy with ``extra`` names appended (names already present are kept as they are)."""
        new = [(n, s) for n, s in extra.items() if n not in self.names]
        return DataInfo(
            self.names + tuple(n for n, _ in new),
            self.shapes + tuple(s for _, s in new),
            self.dtypes + (np.dtype(dtype),) * len(new),
        )

    def zeros(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {n: np.zeros((batch, *s), d) for n, s, d in self.items()}

    def to_json(self) -> dict:
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes],
                "dtypes": [d.str for d in self.dtypes]}

    @classmethod
    def from_json(cls, d: Mapping) -> "DataInfo":
        return cls(d["names"], [tuple(s) for s in d["shapes"]], list(d["dtypes"]))

    def __eq__(self, other) -> bool:
        return isinstance(other, DataInfo) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        body = ", ".join(f"{n}: {s} {d}" for n, s, d in self.items())
        return f"DataInfo({body})"
