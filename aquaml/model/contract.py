"""Checks the seed's model contract and builds user models, before any training starts.

A model is a ``keras.Model`` subclass that declares ``input_name``, ``learning_rate``,
``optimizer``, ``call(...)`` (one positional argument per input name) and ``reset()``;
an actor also declares ``output_info`` (``name -> shape``, containing ``'action'``) and
returns a tuple in that order. Every violation raises :class:`ModelContractError` naming
the model, the attribute and the fix.
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Mapping

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


def _fail(role: str, name: str, msg: str) -> None:
    raise ModelContractError(f"{role} model {name}: {msg}")


def _call_arity(model) -> tuple[int, int | None]:
    """(required, maximum) positional arguments of ``model.call``; maximum None for ``*args``."""
    params = [p for p in inspect.signature(model.call).parameters.values()
              if p.name not in ("training", "mask")]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    return required, None if varargs else len(positional)


def _as_shape(value, role, name, key) -> Shape:
    if isinstance(value, (int, np.integer)):
        value = (int(value),)
    try:
        return tuple(int(d) for d in value)
    except TypeError:
        _fail(role, name, f"output_info[{key!r}] = {value!r} is not a shape; write e.g. {key!r}: (1,)")


def build_model(model_or_class, role: str, available: Mapping[str, Shape], *, actor: bool,
                action_shape: Shape | None = None, q_network: bool = True, outputs: int = 1,
                recurrent: bool = False) -> ModelSpec:
    """Instantiate (if a class), check and build a model.

    Args:
        model_or_class: a ``keras.Model`` subclass (instantiated without arguments) or instance.
        role: ``'actor'``, ``'qf1'``, ... used in error messages.
        available: the named inputs the framework can feed (observations, states, ``'action'``).
        actor: check the actor contract (``output_info``, tuple outputs) rather than a critic's.
        q_network: a critic offered ``'action'`` must read it (not so for discriminators).
        outputs: numbers a non-actor model returns per sample (1: a Q-value, a logit).
        recurrent: a non-actor model may carry state like an actor (a discriminator): its
            ``output_info`` then names one score of shape ``(1,)`` plus state outputs that are
            also inputs, and ``call()`` returns them as a tuple in that order.
        action_shape: the environment's action shape if it declares one.
    """
    cname = getattr(model_or_class, "__name__", type(model_or_class).__name__)
    if isinstance(model_or_class, type):
        if not issubclass(model_or_class, keras.Model):
            _fail(role, cname, "must subclass keras.Model (Keras 3: `import keras; class Net(keras.Model): ...`)")
        try:
            model = model_or_class()
        except TypeError as e:
            _fail(role, cname, f"could not be constructed without arguments ({e}); give __init__ defaults")
    else:
        model = model_or_class
        if not isinstance(model, keras.Model):
            _fail(role, cname, "must be a keras.Model subclass or instance")

    for attr, fix in (("input_name", "self.input_name = ('obs',)"),
                      ("learning_rate", "self.learning_rate = 3e-4"),
                      ("optimizer", "self.optimizer = 'Adam'")):
        if getattr(model, attr, None) is None:
            _fail(role, cname, f"attribute {attr!r} is missing; set it in __init__, e.g. {fix}")
    if not callable(getattr(model, "reset", None)):
        _fail(role, cname, "method reset() is missing; add `def reset(self): pass`")

    input_names = model.input_name
    if isinstance(input_names, str):
        input_names = (input_names,)
    input_names = tuple(input_names)
    if not input_names or not all(isinstance(n, str) for n in input_names):
        _fail(role, cname, f"input_name must be a tuple of names, got {model.input_name!r}")

    output_info: dict[str, Shape] = {}
    if actor:
        info = getattr(model, "output_info", None)
        if not isinstance(info, Mapping) or "action" not in info:
            _fail(role, cname, "output_info must be a dict of output shapes containing 'action', e.g. "
                               "self.output_info = {'action': (1,)}")
        output_info = {str(k): _as_shape(v, role, cname, k) for k, v in info.items()}
        if action_shape is not None and output_info["action"] != tuple(action_shape):
            _fail(role, cname, f"output_info['action'] = {output_info['action']} but the environment's "
                               f"actions have shape {tuple(action_shape)}")
        if "log_std" in output_info and output_info["log_std"] != output_info["action"]:
            _fail(role, cname, f"output_info['log_std'] = {output_info['log_std']} must equal the action "
                               f"shape {output_info['action']}")
        available = {**available, **{k: s for k, s in output_info.items() if k in input_names}}
    elif recurrent and getattr(model, "output_info", None):
        info = model.output_info
        if not isinstance(info, Mapping):
            _fail(role, cname, "output_info must be a dict of output shapes, e.g. {'logit': (1,), 'hidden': (32,)}")
        output_info = {str(k): _as_shape(v, role, cname, k) for k, v in info.items()}
        scores = [k for k in output_info if k not in input_names]
        if len(scores) != 1 or output_info[scores[0]] not in ((1,), ()):
            _fail(role, cname, f"output_info {output_info} must hold exactly one score of shape (1,) besides state "
                               f"outputs (names also in input_name {input_names}); it holds {scores}")
        available = {**available, **{k: s for k, s in output_info.items() if k in input_names}}
    else:
        if getattr(model, "output_info", None):
            hint = (" (a recurrent model declares its state in output_info only in a discriminator role)"
                    if not recurrent else "")
            _fail(role, cname, "a Q-network must not declare output_info (it returns one tensor of Q-values)" + hint)
        if q_network and "action" in available and "action" not in input_names:
            _fail(role, cname, f"input_name {input_names} lacks 'action': a Q-network scores state-action "
                               "pairs, e.g. self.input_name = ('obs', 'action')")

    missing = [n for n in input_names if n not in available]
    if missing:
        _fail(role, cname, f"input_name lists {missing} which the environment does not provide; "
                           f"available inputs: {tuple(available)}")

    required, maximum = _call_arity(model)
    if not (required <= len(input_names) and (maximum is None or len(input_names) <= maximum)):
        _fail(role, cname, f"call() takes {required if maximum == required else f'{required} to {maximum}'} "
                           f"inputs but input_name lists {len(input_names)} {input_names}; make call's "
                           "arguments match input_name one to one, in order")

    try:
        lr = float(model.learning_rate)
    except (TypeError, ValueError):
        _fail(role, cname, f"learning_rate = {model.learning_rate!r} is not a number")
    if not lr > 0:
        _fail(role, cname, f"learning_rate = {lr} must be positive")
    try:
        opt = make_optimizer(model.optimizer, lr, owner=f"{role} model {cname}")
    except ValueError as e:
        raise ModelContractError(str(e)) from None

    # Build with a batch of 2: a batch of 1 would hide outputs broadcast over the batch.
    dummy = [np.zeros((2, *available[n]), np.float32) for n in input_names]
    try:
        with warnings.catch_warnings():
            # Keras cannot pre-build subclassed models with several call() inputs and says so;
            # the eager call below builds every layer, so those warnings are noise here.
            warnings.filterwarnings("ignore", message=".*unbuilt state.*")
            warnings.filterwarnings("ignore", message=".*`build\\(\\)` was called.*")
            out = model(*dummy)
    except Exception as e:  # the user's call() failed on correctly shaped inputs
        shapes = {n: (None, *available[n]) for n in input_names}
        raise ModelContractError(f"{role} model {cname}: call() failed on inputs {shapes}: {e}") from e

    if actor or output_info:
        if not isinstance(out, (tuple, list)):
            if len(output_info) != 1:
                _fail(role, cname, f"call() must return a tuple of {len(output_info)} outputs in "
                                   f"output_info order {tuple(output_info)}, got a single tensor")
            out = (out,)
        if len(out) != len(output_info):
            _fail(role, cname, f"call() returned {len(out)} outputs but output_info declares "
                               f"{len(output_info)} {tuple(output_info)}")
        for (key, shape), value in zip(output_info.items(), out):
            if tuple(value.shape) != (2, *shape):
                _fail(role, cname, f"output {key!r} has shape {tuple(value.shape)[1:]} per sample but "
                                   f"output_info declares {shape}")
    else:
        if isinstance(out, (tuple, list)):
            _fail(role, cname, "a Q-network's call() must return one tensor, not a tuple")
        if outputs != 1 and tuple(out.shape) != (2, outputs):
            _fail(role, cname, f"call() returned shape {tuple(out.shape)[1:]} per sample; expected ({outputs},)")
        if outputs == 1 and tuple(out.shape) not in ((2, 1), (2,)):
            _fail(role, cname, f"call() returned Q-values of shape {tuple(out.shape)[1:]} per sample; "
                               "expected (1,) (one value per state-action pair)")

    fn = ModelFunction(model, input_names)
    return ModelSpec(role, model, fn, input_names, lr, opt, output_info, {n: tuple(available[n]) for n in input_names})
