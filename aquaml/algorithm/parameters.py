"""Shared machinery for algorithm parameter dataclasses: aliases, checks, CLI parsing."""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import types
import typing
from typing import Any, ClassVar, Mapping

import numpy as np

from aquaml.tools.console import did_you_mean


DERIVED_KEY = "derived"  #: the key of :meth:`Parameters.to_dict` listing the fields whose values were derived


class _ParametersMeta(type):
    """Lets the constructor take the aliases too (``PPOParameters(update_times=4)``)."""

    def __call__(cls, *args: Any, **kwargs: Any):
        return super().__call__(*args, **cls._resolve_names(kwargs))


class Parameters(metaclass=_ParametersMeta):
    """Mixin for ``@dataclass`` parameter classes.

    Subclasses may declare ``ALIASES = {'seed_name': 'field_name'}`` so the seed's
    spellings keep working; any other unknown name raises ``TypeError`` naming it.

    **Derived fields.** A class may declare ``DERIVED = ('field', ...)``: fields whose default
    (``None``) is computed from other fields by :meth:`derived_values` (``update_times`` from
    ``update_interval``). A derived field keeps following its sources through every later
    change (:meth:`replace`, :meth:`with_strings`, i.e. ``--set``) unless it was given a value
    of its own. :meth:`to_dict` (what ``config.json`` records) holds the effective values, and
    under ``'derived'`` the fields that were derived, so :meth:`from_kwargs` of it rebuilds
    the same parameters, which go on re-deriving those fields.
    """

    ALIASES: ClassVar[Mapping[str, str]] = {}
    DERIVED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def derived_fields(cls) -> tuple[str, ...]:
        """The fields of this class (and its bases) whose default is derived from other fields."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names += [n for n in klass.__dict__.get("DERIVED", ()) if n not in names]
        return tuple(names)

    def derived_values(self) -> dict[str, Any]:
        """``{derived field: its value from the other fields}``; each class adds its own
        (calling ``super().derived_values()``)."""
        return {}

    def resolve_derived(self) -> None:
        """Fill each derived field left ``None`` from its sources, remembering which were."""
        values = self.derived_values()
        missing = set(self.derived_fields()) - set(values)
        if missing:
            raise TypeError(f"{type(self).__name__}.derived_values() lacks {sorted(missing)}")
        self._derived = frozenset(k for k in values if getattr(self, k) is None)
        for k in self._derived:
            setattr(self, k, values[k])

    @property
    def derived(self) -> frozenset[str]:
        """The derived fields whose values were derived (not given)."""
        return getattr(self, "_derived", frozenset())

    @classmethod
    def _resolve_names(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """``kwargs`` with aliases replaced by their fields; unknown names raise ``TypeError``."""
        names = cls.field_names() if dataclasses.is_dataclass(cls) else ()
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
            raise TypeError(f"{cls.__name__} got {cls.unknown_keys(unknown)}")
        return resolved

    @classmethod
    def from_kwargs(cls, **kwargs: Any):
        """Build from keyword arguments, accepting aliases and rejecting unknown names.

        Takes what :meth:`to_dict` (``config.json``) holds: the fields listed under
        ``'derived'`` are derived again, unless their value differs from what the derivation
        now gives (edited by hand or overridden), which then counts as given.
        """
        derived = kwargs.pop(DERIVED_KEY, None)
        resolved = cls._resolve_names(kwargs)
        if not derived:
            return cls(**resolved)
        if isinstance(derived, str) or not all(isinstance(d, str) for d in derived):
            raise TypeError(f"{cls.__name__}: {DERIVED_KEY!r} must list field names, got {derived!r}")
        again = set(derived) & set(cls.derived_fields())
        params = cls(**{k: v for k, v in resolved.items() if k not in again})
        edited = {k: resolved[k] for k in again if k in resolved and _differs(resolved[k], getattr(params, k))}
        return params.replace(**edited) if edited else params

    @classmethod
    def unknown_keys(cls, keys: list[str]) -> str:
        """What to say of unknown parameter names: the close valid names, else every valid one."""
        valid = sorted(set(cls.field_names()) | set(cls.ALIASES))
        what = f"unknown parameter {keys[0]!r}" if len(keys) == 1 else f"unknown parameter(s) {keys}"
        hint = did_you_mean(keys[0], valid) if len(keys) == 1 else ""
        return f"{what}{hint}" if hint else f"{what}; valid names: {', '.join(valid)}"

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Each field's one-line doc: its ``#:`` comment (on the field's line, or the lines just
        above it) where the most derived class that declares it has one, else a base class's."""
        docs: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("__annotations__", {})
            try:
                lines = inspect.getsource(klass).splitlines() if own else []
            except (OSError, TypeError):  # no source (a class built at run time)
                continue
            above: list[str] = []
            for line in lines:
                text = line.strip()
                if text.startswith("#:"):
                    above.append(text[2:].strip())
                    continue
                name = re.match(r"(\w+)\s*:", text)
                if name and name[1] in own:
                    doc = line.split("#:", 1)[1].strip() if "#:" in line else " ".join(above)
                    if doc:
                        docs[name[1]] = doc.replace("``", "")
                above = []
        return {f.name: docs.get(f.name, "") for f in dataclasses.fields(cls)}

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
        """The effective values by field name (tuples as lists), plus, for a class with derived
        fields, ``'derived'``: those whose values were derived."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}
        if self.derived_fields():
            out[DERIVED_KEY] = sorted(self.derived)
        return out

    def changed_from(self, saved: Mapping[str, Any]) -> list[str]:
        """The fields whose values differ from ``saved`` (a ``config.json``'s parameters, read
        as :meth:`from_kwargs` reads them, so old names such as PPO's ``update_times`` match),
        and the fields ``saved`` lacks: a field added since the run started (IQL's
        ``normalize_rewards``) may change what its default now does."""
        old, given = type(self).from_kwargs(**saved), self.fields_in(saved)
        return sorted(f.name for f in dataclasses.fields(self)
                      if f.name not in given or getattr(old, f.name) != getattr(self, f.name))

    @classmethod
    def fields_in(cls, saved: Mapping[str, Any]) -> set[str]:
        """The fields a saved ``to_dict()`` sets (old names resolved)."""
        return set(cls._resolve_names({k: v for k, v in saved.items() if k != DERIVED_KEY}))

    def replace(self, **changes: Any):
        """A copy with ``changes`` (aliases accepted); derived fields that were not given are
        derived again from the changed sources."""
        changes = type(self)._resolve_names(changes)
        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.derived}
        return type(self)(**{**kept, **changes})

    def with_strings(self, assignments: Mapping[str, str]):
        """Apply ``--set key=value`` strings, converting each value to the field's type."""
        return self.replace(**self.parse_strings(assignments))

    @classmethod
    def parse_strings(cls, assignments: Mapping[str, str]) -> dict[str, Any]:
        """``--set key=value`` strings as typed values by field name (aliases resolved):
        numbers, booleans, None, tuples."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, text in assignments.items():
            target = cls.ALIASES.get(key, key)
            if target not in cls.field_names():
                raise TypeError(cls.unknown_keys([key]))
            if target in values:
                raise TypeError(f"parameter {key!r} and another alias both set {target!r}")
            values[target] = _parse(text, hints[target], key)
        return values


def as_text(value: Any) -> str:
    """A value as ``--set name=value`` text (tuples as comma lists, as the CLI reads them)."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _differs(given: Any, value: Any) -> bool:
    """Whether a value read back (JSON: lists for tuples) differs from a field's value."""
    if isinstance(given, list):
        given = tuple(given)
    return given != value


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


@dataclasses.dataclass
class LoopParameters(Parameters):
    """What every algorithm's parameters share: the training loop's settings.

    An algorithm's dataclass subclasses this (or :class:`OffPolicyParameters`,
    :class:`OnPolicyParameters`), redeclaring a field only to change its default, and
    defines ``steps_per_env``: the steps of each environment per epoch.
    """

    ALIASES: ClassVar[Mapping[str, str]] = {"epoch_length": "episode_length"}
    DERIVED: ClassVar[tuple[str, ...]] = ("eval_every",)
    EVALUATIONS: ClassVar[int] = 20  #: evaluations of a run whose eval_every is derived from its length

    episode_length: int | None = None  #: step limit per episode (a truncation); None: the env's own
    n_epochs: int = 400  #: epochs to train
    n_envs: int = 1  #: environments stepped together (one batched policy call per step)
    #: overlap collection with learning (off-policy: the acting policy lags one epoch of updates),
    #: and with 2+ sampler workers act for half the envs while the other half steps
    overlap: bool = False
    #: env steps (offline: gradient steps) between evaluations, log rows and console tables: one follows
    #: each epoch that reaches a multiple of it, and the last; None: from display_interval if given,
    #: else a twentieth of the run (at least one epoch) (derived)
    eval_every: int | None = None
    #: the seed's schedule in epochs: evaluate every display_interval epochs (eval_every follows it)
    display_interval: int | None = None
    calculate_episodes: int = 5  #: deterministic episodes per evaluation
    store_model_times: int = 5  #: displays between checkpoints (one is always written at the end)
    seed: int = 0  #: seeds the models, the exploration and the environments (evaluations use their own)
    hidden_sizes: tuple[int, ...] = (64, 64)  #: hidden layer sizes of the default models
    lstm_size: int = 0  #: default models only: an LSTM of this size first in the actor (recurrent)
    learning_rate: float = 1e-3  #: learning rate of the default models

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.check_types()
        check_positive(self, "n_epochs", "n_envs", "calculate_episodes", "store_model_times", "learning_rate")
        check_positive(self, "episode_length", "display_interval", "eval_every", allow_none=True)
        self.resolve_derived()
        if self.display_interval is not None and "eval_every" not in self.derived and self.epoch_steps > 0:
            if self.eval_every != self.display_interval * self.epoch_steps:
                unit = "env steps" if self.steps_envs else "gradient steps"
                raise ValueError(f"{type(self).__name__}: give eval_every ({unit}) or display_interval (epochs), not "
                                 f"both: display_interval={self.display_interval} is "
                                 f"{self.display_interval * self.epoch_steps:,} {unit}, eval_every={self.eval_every:,}")
        if self.seed < 0:
            raise ValueError(f"{type(self).__name__}.seed must be >= 0, got {self.seed}")
        if self.lstm_size < 0:
            raise ValueError(f"{type(self).__name__}.lstm_size must be >= 0, got {self.lstm_size}")

    def derived_values(self) -> dict[str, Any]:
        if self.epoch_steps <= 0:  # epochs without a step count of their own (an algorithm's choice): in epochs
            every = None
        elif self.display_interval is not None:
            every = self.display_interval * self.epoch_steps
        else:
            every = max(self.epoch_steps, math.ceil(self.total_steps / self.EVALUATIONS))
        return {**super().derived_values(), "eval_every": every}

    @property
    def steps_per_env(self) -> int:
        """Steps of each environment per epoch."""
        raise NotImplementedError(f"{type(self).__name__} must define steps_per_env")

    @property
    def steps_envs(self) -> bool:
        """Whether the run's steps are env steps (False: offline, its steps are gradient steps)."""
        return True

    @property
    def epoch_steps(self) -> int:
        """The run's steps per epoch: env steps of all environments (offline: gradient steps)."""
        return self.steps_per_env * self.n_envs

    @property
    def total_steps(self) -> int:
        """Environment steps of the whole run."""
        return self.n_epochs * self.epoch_steps


@dataclasses.dataclass
class OffPolicyParameters(LoopParameters):
    """Replay-based training loop settings, shared by SAC and TD3.

    An *epoch* is ``update_interval`` environment steps followed by ``update_times``
    gradient steps; training runs ``n_epochs`` epochs.
    """

    DERIVED: ClassVar[tuple[str, ...]] = ("update_times",)

    update_interval: int = 50  #: env steps per epoch
    update_times: int | None = None  #: gradient steps per epoch; None: update_interval (derived)
    batch_size: int = 256  #: transitions per gradient step
    discount: float = 0.99  #: gamma, the discount factor of future rewards
    tau: float = 0.005  #: Polyak factor of the target networks
    buffer_size: int = 1_000_000  #: replay buffer capacity in transitions
    mini_buffer_size: int = 1000  #: random-action transitions collected before learning
    save_buffer: bool = True  #: checkpoint the replay buffer too (needed for an exact resume)

    def derived_values(self) -> dict[str, Any]:
        return {**super().derived_values(), "update_times": self.update_interval}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "update_interval", "update_times", "batch_size", "buffer_size")
        name = type(self).__name__
        if not 0 <= self.discount <= 1:
            raise ValueError(f"{name}.discount must lie in [0, 1], got {self.discount}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"{name}.tau must lie in (0, 1], got {self.tau}")
        if self.mini_buffer_size < 0:
            raise ValueError(f"{name}.mini_buffer_size must be >= 0, got {self.mini_buffer_size}")
        for other in ("batch_size", "mini_buffer_size"):
            if getattr(self, other) > self.buffer_size:
                raise ValueError(f"{name}.{other} = {getattr(self, other)} exceeds buffer_size = {self.buffer_size}; "
                                 "learning could never start")

    @property
    def steps_per_env(self) -> int:
        return self.update_interval


@dataclasses.dataclass
class OnPolicyParameters(LoopParameters):
    """Rollout-based training loop settings (PPO, A2C): an epoch collects ``rollout_length``
    steps of each of ``n_envs`` environments, and the update learns from that rollout alone."""

    ALIASES: ClassVar[Mapping[str, str]] = {"epoch_length": "episode_length", "gamma": "discount",
                                            "lambada": "gae_lambda", "lam": "gae_lambda",
                                            "n_steps": "rollout_length"}

    n_epochs: int = 100  #: rollouts to collect and train on
    n_envs: int = 8
    learning_rate: float = 3e-4  #: learning rate of the default models
    rollout_length: int = 128  #: steps per environment per rollout
    discount: float = 0.99  #: gamma, the discount factor of future rewards
    gae_lambda: float = 0.95  #: GAE's lambda: 1 is the Monte Carlo return, 0 one-step TD

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "rollout_length")
        for name in ("discount", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{type(self).__name__}.{name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def steps_per_env(self) -> int:
        return self.rollout_length


@dataclasses.dataclass
class OfflineParameters(LoopParameters):
    """Learning from a dataset alone (BC, TD3+BC, IQL): an epoch is ``update_times`` gradient
    steps on batches drawn from the dataset; the environment only serves evaluations, and
    the run's "steps" (``--steps``, the progress bar) count gradient steps."""

    dataset: str = ""  #: ``.npz``/``.h5`` file, ``minari:NAME``, a Minari or ``.npy`` directory
    max_episodes: int | None = None  #: train on the dataset's first episodes only
    n_epochs: int = 100
    update_times: int = 1000  #: gradient steps per epoch
    batch_size: int = 256  #: transitions per gradient step
    normalize_obs: bool = True  #: standardise observations with the dataset's mean and std
    hidden_sizes: tuple[int, ...] = (256, 256)  #: hidden layer sizes of the default models
    learning_rate: float = 3e-4  #: learning rate of the default models

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "update_times", "batch_size")
        check_positive(self, "max_episodes", allow_none=True)
        name = type(self).__name__
        if self.n_envs != 1 or self.overlap:
            raise ValueError(f"{name}: offline algorithms step no environments; leave n_envs = 1 and overlap off")

    @property
    def steps_per_env(self) -> int:
        """Gradient steps per epoch: offline runs count those as their steps."""
        return self.update_times

    @property
    def steps_envs(self) -> bool:
        return False


@dataclasses.dataclass
class SequenceParameters(Parameters):
    """Sequence training of recurrent actors (form 2): windows with stored initial states."""

    DERIVED: ClassVar[tuple[str, ...]] = ("sequence_length",)
    #: the field that ``batch_trajectory`` takes as the window length
    TRAJECTORY_FIELD: ClassVar[str] = "episode_length"

    #: train a recurrent actor on windows of this many steps (form 2); None: with
    #: ``batch_trajectory`` the ``TRAJECTORY_FIELD`` (derived), else no windows
    sequence_length: int | None = None
    batch_trajectory: bool = False  #: the seed's flag: windows as long as a whole trajectory
    burn_in: int = 0  #: leading steps of each window that only warm up the state

    def derived_values(self) -> dict[str, Any]:
        window = getattr(self, self.TRAJECTORY_FIELD) if self.batch_trajectory else None
        return {**super().derived_values(), "sequence_length": window}

    def check_sequence(self, trajectory: tuple[str, int | None], must_divide: Mapping[str, int],
                       burn_in_up_to_length: bool = False) -> None:
        """Resolve ``batch_trajectory`` and check the window settings.

        Args:
            trajectory: ``(field name, length)`` that ``batch_trajectory`` takes as the window length.
            must_divide: ``{field name: value}`` that the window length must divide.
            burn_in_up_to_length: burn-in steps precede the window (PPO), so ``burn_in`` may equal
                the window length; otherwise they are its first steps and must be fewer.
        """
        name = type(self).__name__
        if self.batch_trajectory and self.sequence_length is None:
            if trajectory[1] is None:
                raise ValueError(f"{name}.batch_trajectory needs {trajectory[0]} (the window length)")
            self.sequence_length = trajectory[1]
        if self.sequence_length is None:
            if self.burn_in:
                raise ValueError(f"{name}.burn_in needs sequence_length (or batch_trajectory=True)")
            return
        L = self.sequence_length
        if L <= 0 or any(v % L for v in must_divide.values()):
            names = " and ".join(f"{k} ({v})" for k, v in must_divide.items())
            raise ValueError(f"{name}.sequence_length = {L} must divide {names}")
        if burn_in_up_to_length and not 0 <= self.burn_in <= L:
            raise ValueError(f"{name}.burn_in = {self.burn_in} must lie in [0, sequence_length = {L}]")
        if not burn_in_up_to_length and not 0 <= self.burn_in < L:
            raise ValueError(f"{name}.burn_in = {self.burn_in} must lie in [0, sequence_length)")


MAX_STEPS = "AQUAML_MAX_STEPS"  #: a testing aid (docs/outputs.md): no command trains more than this many steps


def max_steps() -> int | None:
    """``$AQUAML_MAX_STEPS`` as a number, or None when it is not set: the docs test sets it so that
    every documented command runs as printed, in seconds."""
    value = os.environ.get(MAX_STEPS, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{MAX_STEPS}={value}: give a positive number of steps")
    return int(value)


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
