"""Checks the seed's model contract and builds user models, before any training starts.

A model is a ``keras.Model`` subclass that declares ``input_name``, ``learning_rate``,
``optimizer``, ``call(...)`` (one positional argument per input name) and ``reset()``;
an actor also declares ``output_info`` (``name -> shape``, containing ``'action'``) and
returns a tuple in that order. Every violation raises :class:`ModelContractError` naming
the model, the attribute and the fix. One builder per role: :func:`build_actor`,
:func:`build_critic` (Q-networks) and :func:`build_model` (value functions, discriminators,
encoders, decoders).
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, NoReturn

import keras
import numpy as np
import optax

from aquaml.model.functional import ModelFunction
from aquaml.model.optimizers import make_optimizer

Shape = tuple[int, ...]


class ModelContractError(TypeError):
    """A user model does not follow the model contract."""


@dataclass
class ModelSpec:
    """A checked, built model with everything the algorithms need from it."""

    role: str
    model: keras.Model
    fn: ModelFunction
    input_names: tuple[str, ...]
    learning_rate: float
    optimizer: optax.GradientTransformation
    output_info: dict[str, Shape] = field(default_factory=dict)
    input_shapes: dict[str, Shape] = field(default_factory=dict)

    @property
    def state_outputs(self) -> dict[str, Shape]:
        """Outputs fed back as inputs at the next step (recurrent hidden states)."""
        return {k: s for k, s in self.output_info.items() if k in self.input_names}


@dataclass
class _Candidate:
    """A user model under check: the instance, its role, the name errors give, its inputs."""

    model: keras.Model
    role: str
    who: str
    input_names: tuple[str, ...]

    def fail(self, msg: str) -> NoReturn:
        _fail(self.who, msg)


def _fail(who: str, msg: str) -> NoReturn:
    raise ModelContractError(f"{who}: {msg}")


def _call_arity(model: keras.Model) -> tuple[int, int | None]:
    """(required, maximum) positional arguments of ``model.call``; maximum None for ``*args``."""
    params = [p for p in inspect.signature(model.call).parameters.values()
              if p.name not in ("training", "mask")]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    return required, None if varargs else len(positional)


def _as_shape(value: Any, who: str, key: Any) -> Shape:
    """``output_info[key]`` as a shape tuple (an int ``n`` is ``(n,)``)."""
    if isinstance(value, (int, np.integer)):
        value = (int(value),)
    try:
        return tuple(int(d) for d in value)
    except TypeError:
        _fail(who, f"output_info[{key!r}] = {value!r} is not a shape; write e.g. {key!r}: (1,)")


def _instantiate(model_or_class: type | keras.Model, role: str) -> _Candidate:
    """Construct the model if given a class; check its attributes, ``reset()`` and ``input_name``."""
    who = f"{role} model {getattr(model_or_class, '__name__', type(model_or_class).__name__)}"
    if isinstance(model_or_class, type):
        if not issubclass(model_or_class, keras.Model):
            _fail(who, "must subclass keras.Model (Keras 3: `import keras; class Net(keras.Model): ...`)")
        try:
            model = model_or_class()
        except TypeError as e:
            _fail(who, f"could not be constructed without arguments ({e}); give __init__ defaults")
    else:
        model = model_or_class
        if not isinstance(model, keras.Model):
            _fail(who, "must be a keras.Model subclass or instance")
    for attr, fix in (("input_name", "self.input_name = ('obs',)"),
                      ("learning_rate", "self.learning_rate = 3e-4"),
                      ("optimizer", "self.optimizer = 'Adam'")):
        if getattr(model, attr, None) is None:
            _fail(who, f"attribute {attr!r} is missing; set it in __init__, e.g. {fix}")
    if not callable(getattr(model, "reset", None)):
        _fail(who, "method reset() is missing; add `def reset(self): pass`")
    names = (model.input_name,) if isinstance(model.input_name, str) else tuple(model.input_name)
    if not names or not all(isinstance(n, str) for n in names):
        _fail(who, f"input_name must be a tuple of names, got {model.input_name!r}")
    return _Candidate(model, role, who, names)


def _output_shapes(c: _Candidate, info: Mapping) -> dict[str, Shape]:
    """The declared ``output_info`` with every shape a tuple of ints."""
    return {str(k): _as_shape(v, c.who, k) for k, v in info.items()}


def _forbid_output_info(c: _Candidate) -> None:
    """A model returning one tensor declares no ``output_info``."""
    if getattr(c.model, "output_info", None):
        c.fail("a Q-network must not declare output_info (it returns one tensor of Q-values) (a recurrent "
               "model declares its state in output_info only in a discriminator role)")


def _check_call_signature(c: _Candidate, available: Mapping[str, Shape]) -> None:
    """Every input is one the framework feeds, and ``call()`` takes one argument per input."""
    names = c.input_names
    missing = [n for n in names if n not in available]
    if missing:
        c.fail(f"input_name lists {missing} which the environment does not provide; "
               f"available inputs: {tuple(available)}")
    required, maximum = _call_arity(c.model)
    if not (required <= len(names) and (maximum is None or len(names) <= maximum)):
        c.fail(f"call() takes {required if maximum == required else f'{required} to {maximum}'} "
               f"inputs but input_name lists {len(names)} {names}; make call's "
               "arguments match input_name one to one, in order")


def _optimizer(c: _Candidate) -> tuple[float, optax.GradientTransformation]:
    """The model's learning rate, checked positive, and its optax optimizer."""
    try:
        lr = float(c.model.learning_rate)
    except (TypeError, ValueError):
        c.fail(f"learning_rate = {c.model.learning_rate!r} is not a number")
    if not lr > 0:
        c.fail(f"learning_rate = {lr} must be positive")
    try:
        return lr, make_optimizer(c.model.optimizer, lr, owner=c.who)
    except ValueError as e:
        raise ModelContractError(str(e)) from None


def _trace(c: _Candidate, available: Mapping[str, Shape]) -> Any:
    """Call the model once on zeros; this also builds every layer."""
    # Build with a batch of 2: a batch of 1 would hide outputs broadcast over the batch.
    dummy = [np.zeros((2, *available[n]), np.float32) for n in c.input_names]
    try:
        with warnings.catch_warnings():
            # Keras cannot pre-build subclassed models with several call() inputs and says so;
            # the eager call below builds every layer, so those warnings are noise here.
            warnings.filterwarnings("ignore", message=".*unbuilt state.*")
            warnings.filterwarnings("ignore", message=".*`build\\(\\)` was called.*")
            return c.model(*dummy)
    except Exception as e:  # the user's call() failed on correctly shaped inputs
        shapes = {n: (None, *available[n]) for n in c.input_names}
        raise ModelContractError(f"{c.who}: call() failed on inputs {shapes}: {e}") from e


def _check_tuple_outputs(c: _Candidate, out: Any, output_info: dict[str, Shape]) -> None:
    """``call()`` returned one output per ``output_info`` entry, in order, of the declared shapes."""
    if not isinstance(out, (tuple, list)):
        if len(output_info) != 1:
            c.fail(f"call() must return a tuple of {len(output_info)} outputs in "
                   f"output_info order {tuple(output_info)}, got a single tensor")
        out = (out,)
    if len(out) != len(output_info):
        c.fail(f"call() returned {len(out)} outputs but output_info declares "
               f"{len(output_info)} {tuple(output_info)}")
    for (key, shape), value in zip(output_info.items(), out):
        if tuple(value.shape) != (2, *shape):
            c.fail(f"output {key!r} has shape {tuple(value.shape)[1:]} per sample but output_info declares {shape}")


def _check_single_output(c: _Candidate, out: Any, outputs: int) -> None:
    """``call()`` returned one tensor of ``outputs`` numbers per sample."""
    if isinstance(out, (tuple, list)):
        c.fail("a Q-network's call() must return one tensor, not a tuple")
    if outputs != 1 and tuple(out.shape) != (2, outputs):
        c.fail(f"call() returned shape {tuple(out.shape)[1:]} per sample; expected ({outputs},)")
    if outputs == 1 and tuple(out.shape) not in ((2, 1), (2,)):
        c.fail(f"call() returned Q-values of shape {tuple(out.shape)[1:]} per sample; "
               "expected (1,) (one value per state-action pair)")


def _finish(c: _Candidate, available: Mapping[str, Shape], output_info: dict[str, Shape],
            outputs: int = 1) -> ModelSpec:
    """The checks every role shares, then the spec: inputs, optimizer, a traced call's outputs.

    With ``output_info``, ``call()`` returns a tuple in its order, and its state outputs (names
    also in ``input_name``) are fed back as inputs; without, one tensor of ``outputs`` numbers.
    """
    available = {**available, **{k: s for k, s in output_info.items() if k in c.input_names}}
    _check_call_signature(c, available)
    lr, opt = _optimizer(c)
    out = _trace(c, available)
    if output_info:
        _check_tuple_outputs(c, out, output_info)
    else:
        _check_single_output(c, out, outputs)
    fn = ModelFunction(c.model, c.input_names)
    return ModelSpec(c.role, c.model, fn, c.input_names, lr, opt, output_info,
                     {n: tuple(available[n]) for n in c.input_names})


def build_actor(model_or_class: type | keras.Model, role: str, available: Mapping[str, Shape], *,
                action_shape: Shape | None = None) -> ModelSpec:
    """Instantiate (if a class), check and build an actor.

    Its ``output_info`` holds ``'action'`` (of ``action_shape``, the environment's action shape
    if it declares one), optionally ``'log_std'`` of the same shape, and state outputs;
    ``call()`` returns them as a tuple in that order. ``available``: the named inputs the
    framework can feed; ``role`` names the model in error messages.
    """
    c = _instantiate(model_or_class, role)
    info = getattr(c.model, "output_info", None)
    if not isinstance(info, Mapping) or "action" not in info:
        c.fail("output_info must be a dict of output shapes containing 'action', e.g. "
               "self.output_info = {'action': (1,)}")
    output_info = _output_shapes(c, info)
    action = output_info["action"]
    if action_shape is not None and action != tuple(action_shape):
        c.fail(f"output_info['action'] = {action} but the environment's actions have shape {tuple(action_shape)}")
    if "log_std" in output_info and output_info["log_std"] != action:
        c.fail(f"output_info['log_std'] = {output_info['log_std']} must equal the action shape {action}")
    return _finish(c, available, output_info)


def build_critic(model_or_class: type | keras.Model, role: str, available: Mapping[str, Shape]) -> ModelSpec:
    """Instantiate (if a class), check and build a Q-network (``'qf1'``, ``'critic'``, ...).

    It declares no ``output_info``, reads ``'action'`` whenever ``available`` offers it, and
    ``call()`` returns one tensor of one value per sample.
    """
    c = _instantiate(model_or_class, role)
    _forbid_output_info(c)
    if "action" in available and "action" not in c.input_names:
        c.fail(f"input_name {c.input_names} lacks 'action': a Q-network scores state-action "
               "pairs, e.g. self.input_name = ('obs', 'action')")
    return _finish(c, available, {})


def build_model(model_or_class: type | keras.Model, role: str, available: Mapping[str, Shape], *,
                outputs: int = 1, recurrent: bool = False) -> ModelSpec:
    """Instantiate (if a class), check and build a model of any other role.

    Value functions, discriminators, encoders, decoders: ``call()`` returns one tensor of
    ``outputs`` numbers per sample (1: a value, a logit) and need not read ``'action'``. With
    ``recurrent`` the model may carry state like an actor (a discriminator): its ``output_info``
    then names one score of shape ``(1,)`` plus state outputs that are also inputs, and
    ``call()`` returns them as a tuple in that order.
    """
    c = _instantiate(model_or_class, role)
    info = getattr(c.model, "output_info", None)
    if not (recurrent and info):
        _forbid_output_info(c)
        return _finish(c, available, {}, outputs)
    if not isinstance(info, Mapping):
        c.fail("output_info must be a dict of output shapes, e.g. {'logit': (1,), 'hidden': (32,)}")
    output_info = _output_shapes(c, info)
    scores = [k for k in output_info if k not in c.input_names]
    if len(scores) != 1 or output_info[scores[0]] not in ((1,), ()):
        c.fail(f"output_info {output_info} must hold exactly one score of shape (1,) besides state "
               f"outputs (names also in input_name {c.input_names}); it holds {scores}")
    return _finish(c, available, output_info)
