"""Finding an algorithm class by CLI name, import path or installed entry point.

``aquaml train NAME ENV`` accepts a built-in name (``sac``), ``package.module:Class`` for an
algorithm in the user's own file, or the name of an ``aquaml.algorithms`` entry point that
an installed package registers::

    [project.entry-points."aquaml.algorithms"]
    a2c = "my_pkg.a2c:A2C"
"""
from __future__ import annotations

from importlib.metadata import entry_points

from aquaml.algorithm import ALGORITHMS
from aquaml.algorithm.interface import check_algorithm
from aquaml.tools.imports import import_class, qualname

ENTRY_POINT_GROUP = "aquaml.algorithms"


def builtin_algorithms() -> dict[str, type]:
    return dict(ALGORITHMS)


def installed_algorithms() -> dict[str, object]:
    """Entry points of the ``aquaml.algorithms`` group, by name (not loaded yet)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def resolve_algorithm(spec: str) -> type:
    """The algorithm class named by ``spec``; a ``ValueError`` lists the valid choices."""
    builtins = builtin_algorithms()
    if spec.lower() in builtins:
        return builtins[spec.lower()]
    if ":" in spec:
        cls = import_class(spec, "algorithm")
    else:
        installed = installed_algorithms()
        if spec not in installed:
            choices = sorted(builtins) + sorted(installed)
            raise ValueError(f"unknown algorithm {spec!r}; valid choices: {', '.join(choices)} "
                             "(or package.module:Class)")
        cls = installed[spec].load()
    check_algorithm(cls)
    return cls


def with_generator(algo: type, generator: str) -> type:
    """The variant of an adversarial algorithm that trains ``generator`` (``--set generator=ppo``)."""
    variants = getattr(algo, "generators", None)
    if not variants:
        raise ValueError(f"{algo.name} has no generator option; generator= applies to "
                         f"{', '.join(n for n, c in builtin_algorithms().items() if getattr(c, 'generators', None))}")
    if generator.lower() not in variants:
        raise ValueError(f"generator {generator!r} for {algo.name}; use one of {', '.join(variants)}")
    return builtin_algorithms()[variants[generator.lower()]]


def algorithm_reference(cls: type) -> str | None:
    """How ``config.json`` names ``cls`` so it can be found again: the built-in name or an import path."""
    if builtin_algorithms().get(getattr(cls, "name", None)) is cls:
        return cls.name
    return qualname(cls)
