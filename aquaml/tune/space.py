"""Search spaces: which parameters a study varies, and over what.

A space maps parameter names (fields of the algorithm's parameter dataclass, or their aliases)
to distributions, written in YAML as::

    learning_rate: {type: log_float, low: 1.0e-5, high: 1.0e-2}
    tau: {type: float, low: 0.001, high: 0.05}
    update_times: {type: int, low: 10, high: 100, step: 10}
    batch_size: {type: categorical, choices: [64, 128, 256]}
    hidden_sizes: {type: categorical, choices: ["64,64", "256,256"]}

Every sampled value reaches the run as the text ``aquaml train --set name=value`` would pass,
so a trial's configuration is always one ``aquaml train`` command (``best_command.sh``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from aquaml.tools.console import did_you_mean
from aquaml.tools.imports import optional_import

TYPES = ("float", "log_float", "int", "log_int", "categorical")


@dataclass(frozen=True)
class Dimension:
    """One parameter's distribution."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple | None = None

    def suggest(self, trial) -> Any:
        """The value an Optuna trial draws for this parameter."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type in ("int", "log_int"):
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.type == "log_int")
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.type == "log_float")

    def to_dict(self) -> dict:
        out = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, **({"step": self.step} if self.step else {}))
        return out


class SpaceError(ValueError):
    """A search space that cannot be searched (names the parameter and what is wrong)."""


def parse_space(spec: Mapping[str, Any], params_cls: type, where: str = "the search space") -> dict[str, Dimension]:
    """Check a space written as a mapping (see the module doc) against ``params_cls``."""
    if not isinstance(spec, Mapping) or not spec:
        raise SpaceError(f"{where} is empty: give at least one parameter, e.g. "
                         "learning_rate: {type: log_float, low: 1.0e-5, high: 1.0e-2}")
    fields = set(params_cls.field_names())
    aliases = dict(getattr(params_cls, "ALIASES", {}))
    dims = {}
    for raw_name, entry in spec.items():
        name = aliases.get(raw_name, raw_name)
        if name not in fields:
            raise SpaceError(f"{where}: unknown parameter {raw_name!r} for {params_cls.__name__}"
                             f"{did_you_mean(raw_name, fields)}; valid names: {', '.join(sorted(fields))}")
        if not isinstance(entry, Mapping) or entry.get("type") not in TYPES:
            raise SpaceError(f"{where}: {raw_name!r} needs a type, one of {', '.join(TYPES)} (got {entry!r})")
        kind = entry["type"]
        unknown = set(entry) - {"type", "low", "high", "step", "choices"}
        if unknown:
            raise SpaceError(f"{where}: {raw_name!r} has unknown keys {sorted(unknown)}")
        if kind == "categorical":
            choices = entry.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise SpaceError(f"{where}: categorical {raw_name!r} needs a non-empty list of choices")
            bad = [c for c in choices if not isinstance(c, (str, int, float, bool))]
            if bad:
                raise SpaceError(f"{where}: {raw_name!r} choices must be numbers, strings or booleans; write "
                                 f"{bad[0]!r} as a string such as \"64,64\"")
            dims[name] = Dimension(name, kind, choices=tuple(choices))
            continue
        try:
            low, high = float(entry["low"]), float(entry["high"])
        except (KeyError, TypeError, ValueError):
            raise SpaceError(f"{where}: {raw_name!r} ({kind}) needs numbers low and high") from None
        step = entry.get("step")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise SpaceError(f"{where}: {raw_name!r} needs low < high, got low={low}, high={high}")
        if kind.startswith("log") and low <= 0:
            raise SpaceError(f"{where}: {raw_name!r} is {kind}, so low must be positive (got {low})")
        if kind.endswith("int") and not (low.is_integer() and high.is_integer()):
            raise SpaceError(f"{where}: {raw_name!r} is {kind}, so low and high must be whole numbers")
        if step is not None and (kind.startswith("log") or not float(step) > 0):
            raise SpaceError(f"{where}: {raw_name!r}: step must be positive and cannot go with a log scale")
        dims[name] = Dimension(name, kind, low, high, float(step) if step is not None else None)
    return dims


def load_space(path: str | Path, params_cls: type) -> dict[str, Dimension]:
    """A space from a YAML file."""
    yaml = optional_import("yaml", "a search space file", "tune")

    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"search space file {path} does not exist")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpaceError(f"{path} is not valid YAML: {e}") from None
    return parse_space(spec or {}, params_cls, str(path))


_OFF_POLICY = {
    "learning_rate": {"type": "log_float", "low": 1e-4, "high": 3e-3},
    "batch_size": {"type": "categorical", "choices": [64, 128, 256, 512]},
    "discount": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995]},
    "tau": {"type": "log_float", "low": 1e-3, "high": 0.05},
    "hidden_sizes": {"type": "categorical", "choices": ["64,64", "128,128", "256,256"]},
    "update_times": {"type": "categorical", "choices": [25, 50, 100]},
}
_ADVERSARIAL = {"discriminator_learning_rate": {"type": "log_float", "low": 3e-5, "high": 3e-3},
                "gradient_penalty": {"type": "categorical", "choices": [0.0, 0.1, 1.0, 10.0]}}
#: the documented default space of each built-in algorithm (docs/tuning.md)
DEFAULT_SPACES: dict[str, dict] = {
    "sac": {**_OFF_POLICY, "alpha": {"type": "log_float", "low": 0.01, "high": 1.0},
            "target_entropy": {"type": "categorical", "choices": ["None", -0.5, -2.0]}},
    "td3": {**_OFF_POLICY, "exploration_noise": {"type": "float", "low": 0.05, "high": 0.5},
            "policy_noise": {"type": "float", "low": 0.1, "high": 0.5}},
    "ppo": {
        "learning_rate": {"type": "log_float", "low": 1e-5, "high": 3e-3},
        "rollout_length": {"type": "categorical", "choices": [64, 128, 256, 512]},
        "batch_size": {"type": "categorical", "choices": [64, 128, 256, 512]},
        "discount": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995]},
        "gae_lambda": {"type": "categorical", "choices": [0.8, 0.9, 0.95, 0.98, 1.0]},
        "clip_range": {"type": "categorical", "choices": [0.1, 0.2, 0.3]},
        "n_update_epochs": {"type": "int", "low": 3, "high": 20},
        "ent_coef": {"type": "categorical", "choices": [0.0, 1e-4, 1e-3, 1e-2]},
        "hidden_sizes": {"type": "categorical", "choices": ["64,64", "128,128", "256,256"]},
        "log_std_init": {"type": "float", "low": -2.0, "high": 0.5},
    },
    "bc": {"learning_rate": {"type": "log_float", "low": 1e-5, "high": 3e-3},
           "batch_size": {"type": "categorical", "choices": [64, 128, 256, 512]},
           "hidden_sizes": {"type": "categorical", "choices": ["64,64", "256,256", "256,256,256"]}},
}
DEFAULT_SPACES["gail"] = {**DEFAULT_SPACES["sac"], **_ADVERSARIAL}
# AIRL's SAC generator keeps its temperature at 1 (the reward f - log pi is entropy-regularised at 1)
DEFAULT_SPACES["airl"] = {**_OFF_POLICY, **_ADVERSARIAL}
DEFAULT_SPACES["amp"] = {**DEFAULT_SPACES["sac"], **_ADVERSARIAL}
DEFAULT_SPACES["gail_ppo"] = {**DEFAULT_SPACES["ppo"], **_ADVERSARIAL}
DEFAULT_SPACES["airl_ppo"] = {**DEFAULT_SPACES["ppo"], **_ADVERSARIAL}
DEFAULT_SPACES["td3bc"] = {**DEFAULT_SPACES["bc"], "alpha": {"type": "log_float", "low": 0.5, "high": 50.0}}
DEFAULT_SPACES["iql"] = {**DEFAULT_SPACES["bc"], "expectile": {"type": "float", "low": 0.5, "high": 0.95},
                         "temperature": {"type": "log_float", "low": 0.5, "high": 10.0}}


def default_space(algo: type) -> dict[str, Dimension]:
    """The documented default space of a built-in algorithm (yours: give ``--space FILE``)."""
    if algo.name not in DEFAULT_SPACES:
        raise SpaceError(f"{algo.name} has no default search space; give one with --space FILE.yaml "
                         f"(defaults exist for {', '.join(sorted(DEFAULT_SPACES))})")
    return parse_space(DEFAULT_SPACES[algo.name], algo.Parameters, f"the default {algo.name} space")
