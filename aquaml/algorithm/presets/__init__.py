"""Settings per environment ("presets"), in the spirit of RL Zoo's hyperparameter files.

``<algo>.yaml`` beside this module maps Gymnasium ids to an entry::

    HalfCheetah-v5:
      source: RL Zoo sac.yml, HalfCheetah-v4      # where the numbers come from (required)
      steps: 1000000                              # the run's length when --steps is not given
      set: {hidden_sizes: [256, 256], ...}        # AquaML's parameter names and values

Top-level keys starting with ``_`` hold shared blocks (YAML anchors), not environments. The
values of ``set`` are applied as ``--set`` applies its strings (types checked the same way),
before the user's own ``--set``, which overrides them. ``aquaml train ALGO ENV --preset FILE``
reads another file of the same format; ``--preset none`` uses the bare defaults. Importing this
module needs no JAX.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from aquaml.algorithm.parameters import as_text

BUILTIN = Path(__file__).resolve().parent
NONE = "none"  #: --preset none: the bare defaults
ENTRY_KEYS = frozenset({"source", "steps", "set"})


class PresetError(ValueError):
    """A preset file that cannot be read, or an entry that does not fit its algorithm."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One environment's entry of one algorithm's preset file."""

    algo: str
    env: str
    source: str
    values: dict[str, str]  #: parameter -> value as a ``--set`` string
    steps: int | None
    file: str

    def announce(self, overridden: Iterable[str] = (), steps_given: bool = False) -> str:
        """The line ``aquaml train`` prints when it uses this preset (``overridden``: the keys the
        user's ``--set`` gives instead)."""
        where = "" if Path(self.file).parent == BUILTIN else f" from {self.file}"
        overridden = set(overridden)
        settings = ", ".join(f"{k}={v}" for k, v in self.values.items() if k not in overridden) or "the defaults"
        steps = f", {self.steps:,} steps" if self.steps and not steps_given else ""
        kept = [k for k in self.values if k in overridden] + (["steps"] if self.steps and steps_given else [])
        others = f"; yours: {', '.join(kept)}" if kept else ""
        return (f"aquaml: {self.algo} preset for {self.env}{where} ({self.source}): {settings}{steps}{others} "
                f"(--preset none: the defaults)")

    def record(self) -> dict[str, Any]:
        """What ``config.json`` keeps of it (the effective values are in ``parameters``)."""
        return {"env": self.env, "source": self.source, "values": dict(self.values), "steps": self.steps,
                "file": self.file}


def preset_file(algo: str) -> Path:
    """The built-in preset file of ``algo`` (it may not exist: no presets for that algorithm)."""
    return BUILTIN / f"{algo.lower()}.yaml"


def read_presets(path: str | Path, algo: str) -> dict[str, Preset]:
    """Every environment's entry of the preset file ``path`` for ``algo``; a malformed entry raises
    :class:`PresetError` naming the file, the entry and what is wrong."""
    import yaml

    path = Path(path)
    try:
        table = yaml.safe_load(path.read_text())
    except OSError as error:
        raise PresetError(f"preset file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PresetError(f"preset file {path} is not valid YAML: {error}") from None
    if not isinstance(table, dict):
        raise PresetError(f"preset file {path}: expected a mapping of environment ids to entries")
    presets = {}
    for env, entry in table.items():
        if str(env).startswith("_"):
            continue
        where = f"preset file {path}, {env}"
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str) or not entry["source"].strip():
            raise PresetError(f"{where}: an entry needs 'source' (where its numbers come from) and 'set'")
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise PresetError(f"{where}: unknown keys {sorted(unknown)} (an entry has {sorted(ENTRY_KEYS)}; "
                              "parameters go under 'set')")
        values = entry.get("set") or {}
        if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
            raise PresetError(f"{where}: 'set' must map parameter names to values")
        steps = entry.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, float)) or steps <= 0
                                  or int(steps) != steps):
            raise PresetError(f"{where}: 'steps' must be a positive whole number, got {steps!r}")
        presets[str(env)] = Preset(algo.lower(), str(env), entry["source"].strip(),
                                   {k: as_text(v) for k, v in values.items()},
                                   int(steps) if steps is not None else None, str(path))
    return presets


def find_preset(algo: str, env: str, choice: str | None = None) -> Preset | None:
    """The preset ``aquaml train algo env`` uses: from ``choice`` (a file; ``none``: no preset) or
    the built-in file of ``algo``; None where it has no entry for ``env``."""
    if choice is not None and choice.lower() == NONE:
        return None
    path = Path(choice) if choice is not None else preset_file(algo)
    if choice is None and not path.exists():
        return None
    return read_presets(path, algo).get(env)


def other_versions(algo: str, env: str) -> list[str]:
    """Ids of ``algo``'s built-in presets that differ from ``env`` only in their version
    (``HalfCheetah-v5`` for ``HalfCheetah-v4``)."""
    path = preset_file(algo)
    if not path.exists():
        return []
    base = env.rsplit("-v", 1)[0]
    return [e for e in read_presets(path, algo) if e != env and e.rsplit("-v", 1)[0] == base]


def builtin_presets() -> dict[str, dict[str, Preset]]:
    """``{algo: {env: preset}}`` of every built-in preset file."""
    return {p.stem: read_presets(p, p.stem) for p in sorted(BUILTIN.glob("*.yaml"))}
