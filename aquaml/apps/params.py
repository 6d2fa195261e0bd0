"""``aquaml params``: the algorithms, every parameter key of one with its type, default and doc, and
the environment ids; all without importing JAX."""
from __future__ import annotations

import dataclasses
import shutil
import textwrap
from typing import Any, Mapping

from aquaml.algorithm.parameters import as_text


def shown(value: Any) -> str:
    """A value as ``--set`` takes it (``''`` for the empty string, which ``--set key=`` gives)."""
    return "''" if value == "" else as_text(value)


def parameter_table(params_cls: type, preset: Mapping[str, Any] | None = None, width: int | None = None) -> str:
    """Every key of ``params_cls`` (alphabetically): its type, default and one-line doc; with
    ``preset`` (an environment's values of some keys) a column of those too."""
    defaults = params_cls()
    docs = params_cls.field_docs()
    header = ["key", "type", "default", *(["preset"] if preset is not None else [])]
    rows = [[f.name, str(f.type), shown(getattr(defaults, f.name)),
             *([shown(preset[f.name]) if f.name in preset else ""] if preset is not None else [])]
            for f in sorted(dataclasses.fields(params_cls), key=lambda f: f.name)]
    sizes = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    indent = sum(sizes) + 2 * len(sizes)
    width = width or shutil.get_terminal_size((120, 24)).columns
    lines = ["  ".join(c.ljust(s) for c, s in zip(header, sizes)) + "  doc"]
    for row in rows:
        doc = textwrap.wrap(docs[row[0]], max(30, width - indent)) or [""]
        lines.append("  ".join(c.ljust(s) for c, s in zip(row, sizes)) + "  " + doc[0])
        lines += [" " * indent + more for more in doc[1:]]
    aliases = getattr(params_cls, "ALIASES", {})
    if aliases:
        lines.append("aliases: " + ", ".join(f"{a} = {k}" for a, k in sorted(aliases.items())))
    return "\n".join(lines)


def algorithm_list() -> str:
    """The built-in algorithms with their one-line summaries."""
    from aquaml.algorithm.registry import BUILTINS, installed_algorithms

    size = max(map(len, BUILTINS))
    lines = [f"  {name.ljust(size)}  {b.summary}" for name, b in BUILTINS.items()]
    lines += [f"  {name.ljust(size)}  (installed: {ep.value})" for name, ep in sorted(installed_algorithms().items())]
    return "\n".join(["algorithms:", *lines, "", "`aquaml params ALGO` lists an algorithm's parameter keys; "
                      "`aquaml params --envs` the environment ids."])


def environment_list() -> str:
    """Every registered Gymnasium id (AquaML's own included), one per line."""
    import gymnasium as gym

    import aquaml.env  # noqa: F401  (registers the position-only ids)

    return "\n".join(sorted(gym.registry))


def describe(algo: str, env: str | None = None) -> str:
    """What ``aquaml params ALGO [ENV]`` prints."""
    from aquaml.algorithm.registry import BUILTINS, parameters_of

    params_cls = parameters_of(algo)
    builtin = BUILTINS.get(algo.lower())
    title = f"{algo.lower()}: {builtin.summary}" if builtin else f"{algo}: {params_cls.__name__}"
    usage = f"set with: aquaml train {algo.lower() if builtin else algo} {env or 'ENV'} --set KEY=VALUE"
    preset, note = None, []
    if env:
        from aquaml.algorithm.presets import find_preset, other_versions
        from aquaml.env import make_env

        make_env(env).close()  # an unknown id fails here, with the close ones
        found = find_preset(algo, env)
        if found is not None:
            preset = params_cls().with_strings(found.values).to_dict()  # the values as the run gets them
            preset = {k: preset[k] for k in found.values}
            steps = f"; {found.steps:,} steps unless --steps" if found.steps else ""
            note = [f"preset for {env}: {found.source}{steps} (aquaml train uses it; --preset none does not)"]
        else:
            others = other_versions(algo, env)
            note = [f"{env}: no {algo.lower()} preset, the defaults apply"
                    + (f" (presets exist for {', '.join(others)})" if others else "")]
    return "\n".join([title, usage, *note, "", parameter_table(params_cls, preset)])
