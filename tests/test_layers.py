"""The package's structure: every import (inside functions too) points down the layers, and no
module imports itself back through others.

Layers, lowest first: helpers (``tools``, ``_backend``), the policy runtime that needs neither JAX
nor Keras (``deploy``), ``model``, ``data``, ``env``,
``parallel``, ``sampler``, ``algorithm``, ``starter`` (run session, building, loading runs),
then the applications: ``apps`` (train/eval/collect, videos), ``plot``, ``tune``, ``cli``, the
seed's import paths (``seed``) and the package's ``__init__``. A module may import its own
layer and the ones below, never one above.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aquaml"
LAYERS = ["tools", "_backend", "deploy", "model", "data", "env", "parallel", "sampler", "algorithm", "starter", "apps", "plot",
          "tune", "cli", "seed", "__init__"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str] | frozenset = frozenset()) -> list[tuple[str, int]]:
    """Every ``aquaml`` module ``path`` imports (module level and inside functions), with the line.

    ``from aquaml.x import y`` imports module ``aquaml.x.y`` when that is one of ``known``, else
    the name ``y`` of ``aquaml.x``.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.append((sub if sub in known else node.module, node.lineno))
    return [(name, line) for name, line in found if name == "aquaml" or name.startswith("aquaml.")]


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (names that are not modules are dropped)."""
    known = modules()
    return {m: {name for name, _ in imports_of(p, set(known)) if name in known and name != m} for m, p in known.items()}


def test_every_module_has_a_layer():
    assert {layer_of(m) for m in modules()} <= set(LAYERS)


def test_imports_point_down_the_layers():
    known = modules()
    upward = []
    for module, path in known.items():
        rank = LAYERS.index(layer_of(module))
        for name, line in imports_of(path, set(known)):
            if name in known and LAYERS.index(layer_of(name)) > rank:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not upward, "imports that run back up a layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: an import from a lower layer to a higher one is reported."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from aquaml.starter import RLTaskStarter\n")
    assert imports_of(source, set(modules())) == [("aquaml.starter", 2)]
    assert LAYERS.index(layer_of("aquaml.starter")) > LAYERS.index(layer_of("aquaml.data.collect"))
