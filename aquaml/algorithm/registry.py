"""Finding an algorithm class by CLI name, import path or installed entry point.

``aquaml train NAME ENV`` accepts a built-in name (``sac``), ``package.module:Class`` for an
algorithm in the user's own file, or the name of an ``aquaml.algorithms`` entry point that
an installed package registers::

    [project.entry-points."aquaml.algorithms"]
    a2c = "my_pkg.a2c:A2C"

The built-ins are known here by name, import path and parameter class without being imported:
this module imports no JAX, so the command line checks an algorithm's name and its ``--set``
keys (and ``aquaml params`` lists them) before JAX loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Mapping

from aquaml.algorithm import builtin_parameters as bp
from aquaml.tools.console import did_you_mean
from aquaml.tools.imports import import_class, qualname

ENTRY_POINT_GROUP = "aquaml.algorithms"


@dataclass(frozen=True)
class Builtin:
    """A built-in algorithm as the command line knows it before importing it."""

    path: str  #: ``module:Class``, imported on first use
    parameters: type  #: its parameter dataclass (imports no JAX)
    summary: str  #: one line for ``aquaml params``
    generators: Mapping[str, str] = field(default_factory=dict)  #: ``--set generator=X`` -> the variant's name
    needs_env: bool = True  #: acts in an environment (the VAE models dataset fields)


_GAIL, _AIRL = {"sac": "gail", "ppo": "gail_ppo"}, {"sac": "airl", "ppo": "airl_ppo"}
#: CLI name -> built-in algorithm (a test checks each entry against the class it names)
BUILTINS: dict[str, Builtin] = {
    "sac": Builtin("aquaml.algorithm.sac:SAC", bp.SACParameters, "soft actor-critic: off-policy, continuous actions"),
    "td3": Builtin("aquaml.algorithm.td3:TD3", bp.TD3Parameters, "twin delayed DDPG: off-policy, continuous actions"),
    "ppo": Builtin("aquaml.algorithm.ppo:PPO", bp.PPOParameters,
                   "proximal policy optimisation: on-policy, continuous or discrete actions"),
    "bc": Builtin("aquaml.algorithm.bc:BC", bp.BCParameters, "behaviour cloning from a dataset (offline)"),
    "dagger": Builtin("aquaml.algorithm.dagger:DAgger", bp.DAggerParameters,
                      "behaviour cloning on the learner's own states, labelled by an expert run"),
    "td3bc": Builtin("aquaml.algorithm.td3bc:TD3BC", bp.TD3BCParameters, "TD3+BC: offline RL from a dataset"),
    "iql": Builtin("aquaml.algorithm.iql:IQL", bp.IQLParameters, "implicit Q-learning: offline RL from a dataset"),
    "gail": Builtin("aquaml.algorithm.gail:GAIL", bp.GAILParameters,
                    "adversarial imitation of expert data, SAC generator", _GAIL),
    "gail_ppo": Builtin("aquaml.algorithm.gail:GAILPPO", bp.GAILPPOParameters,
                        "adversarial imitation of expert data, PPO generator", _GAIL),
    "airl": Builtin("aquaml.algorithm.airl:AIRL", bp.AIRLParameters,
                    "adversarial inverse RL (learns a reward), SAC generator", _AIRL),
    "airl_ppo": Builtin("aquaml.algorithm.airl:AIRLPPO", bp.AIRLPPOParameters,
                        "adversarial inverse RL (learns a reward), PPO generator", _AIRL),
    "amp": Builtin("aquaml.algorithm.amp:AMP", bp.AMPParameters,
                   "adversarial motion priors: task reward plus a style reward from expert data"),
    "vae": Builtin("aquaml.algorithm.vae:VAE", bp.VAEParameters, "variational autoencoder of dataset fields",
                   needs_env=False),
}


def builtin_algorithms() -> dict[str, type]:
    """CLI name -> built-in algorithm class (imports them all)."""
    return {name: import_class(b.path, "algorithm") for name, b in BUILTINS.items()}


def installed_algorithms() -> dict[str, object]:
    """Entry points of the ``aquaml.algorithms`` group, by name (not loaded yet)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def check_name(spec: str) -> None:
    """Raise a ``ValueError`` (with the close names and every valid one) unless ``spec`` names an
    algorithm: a built-in, an installed entry point or ``package.module:Class`` (not imported here)."""
    if spec.lower() in BUILTINS or ":" in spec:
        return
    installed = installed_algorithms()
    if spec not in installed:
        choices = sorted(BUILTINS) + sorted(installed)
        raise ValueError(f"unknown algorithm {spec!r}{did_you_mean(spec.lower(), choices)}; valid choices: "
                         f"{', '.join(choices)} (or package.module:Class)")


def parameters_of(spec: str, generator: str | None = None) -> type:
    """The parameter class of the algorithm ``spec`` names (``generator``: of that variant, as
    ``--set generator=ppo`` picks it); a built-in's without importing the algorithm."""
    check_name(spec)
    builtin = BUILTINS.get(spec.lower())
    if builtin is None:
        algo = resolve_algorithm(spec)
        return (with_generator(algo, generator) if generator else algo).Parameters
    if generator is not None:
        return BUILTINS[_variant(spec.lower(), builtin.generators, generator)].parameters
    return builtin.parameters


def resolve_algorithm(spec: str) -> type:
    """The algorithm class named by ``spec``; a ``ValueError`` lists the valid choices."""
    from aquaml.algorithm.interface import check_algorithm

    check_name(spec)
    if spec.lower() in BUILTINS:
        return import_class(BUILTINS[spec.lower()].path, "algorithm")
    cls = import_class(spec, "algorithm") if ":" in spec else installed_algorithms()[spec].load()
    check_algorithm(cls)
    return cls


def _variant(name: str, variants: Mapping[str, str], generator: str) -> str:
    if not variants:
        with_options = ", ".join(n for n, b in BUILTINS.items() if b.generators)
        raise ValueError(f"{name} has no generator option; generator= applies to {with_options}")
    if generator.lower() not in variants:
        raise ValueError(f"generator {generator!r} for {name}; use one of {', '.join(variants)}")
    return variants[generator.lower()]


def with_generator(algo: type, generator: str) -> type:
    """The variant of an adversarial algorithm that trains ``generator`` (``--set generator=ppo``)."""
    return resolve_algorithm(_variant(algo.name, getattr(algo, "generators", None) or {}, generator))


def algorithm_reference(cls: type) -> str | None:
    """How ``config.json`` names ``cls`` so it can be found again: the built-in name or an import path."""
    name = getattr(cls, "name", None)
    if name in BUILTINS and BUILTINS[name].path == qualname(cls):
        return name
    return qualname(cls)
