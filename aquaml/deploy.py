"""Running an exported policy without JAX or Keras: :class:`OnnxPolicy`, and the input checks that
every policy's ``predict`` shares (:func:`policy_inputs`, :func:`policy_outputs`).

This module imports NumPy only, and onnxruntime when an :class:`OnnxPolicy` is made, so a robot's
computer needs ``pip install numpy onnxruntime`` and this one file (or ``aquaml[deploy]``)::

    from aquaml.deploy import OnnxPolicy     # or, with the file copied alone: from deploy import OnnxPolicy

    policy = OnnxPolicy("policy.onnx")
    state = None                              # a recurrent policy's state; None starts an episode
    action, state = policy.predict(obs, state)

The model's inputs are the actor's observations, float32 ``[batch, *shape]``, and its recurrent
states; its outputs ``action`` (in the environment's units; int64 for discrete actions) and, per
state ``<name>``, ``next_<name>`` (docs/deploy.md).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

#: the output that carries a recurrent state input ``<name>`` to the next step is ``next_<name>``
NEXT = "next_"

Shapes = Mapping[str, tuple[int, ...]]


def _describe(shapes: Shapes) -> str:
    return ", ".join(f"{k!r} {tuple(s)}" for k, s in shapes.items())


def _checked(name: str, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``value`` as a float32 array, or a clear error about its dtype."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(f"{what} {name!r} has dtype {array.dtype}; the policy reads floating-point numbers "
                        f"(float32, shape {tuple(shape)}): cast it, e.g. np.asarray(x, np.float32)")
    return array.astype(np.float32, copy=False)


def _batched(name: str, array: np.ndarray, shape: tuple[int, ...], single: bool | None, what: str,
             batch: int | None) -> tuple[np.ndarray, bool, int]:
    """``array`` with a batch axis; whether it was one sample; the batch size."""
    shape = tuple(shape)
    if array.shape == shape and single is not False:
        return array.reshape(1, *shape), True, 1
    if array.shape[1:] == shape and array.ndim == len(shape) + 1 and single is not True and (
            batch is None or array.shape[0] == batch):
        return array, False, array.shape[0]
    expected = (f"{shape}" if single else f"({batch}, *{shape})" if batch is not None else
                f"{shape} (one observation) or (batch, *{shape})")
    raise ValueError(f"{what} {name!r} has shape {array.shape}; the policy reads {expected}")


def policy_inputs(obs: Any, state: Mapping[str, Any] | None, obs_shapes: Shapes,
                  state_shapes: Shapes) -> tuple[dict[str, np.ndarray], bool]:
    """A policy's checked inputs: float32 arrays with a batch axis, and whether ``obs`` was one observation.

    Args:
        obs: a dict of named observations (names the policy does not read are ignored), or one array
            when the policy reads one observation; each of one observation's shape or batched.
        state: None (zeros: an episode starts) or the state the previous ``predict`` returned.
        obs_shapes, state_shapes: name -> shape of one sample.
    """
    if not isinstance(obs, Mapping):
        if len(obs_shapes) != 1:
            raise ValueError(f"the policy reads several observations ({_describe(obs_shapes)}); pass a dict "
                             "of named arrays")
        obs = {next(iter(obs_shapes)): obs}
    inputs: dict[str, np.ndarray] = {}
    single, batch = None, None
    for what, shapes, given in (("observation", obs_shapes, obs), ("state", state_shapes, state)):
        for name, shape in shapes.items():
            if given is None:  # no state yet: zeros
                inputs[name] = np.zeros((batch or 1, *shape), np.float32)
                continue
            if name not in given:
                hint = "" if what == "observation" else " (pass the state predict returned, or None)"
                raise ValueError(f"{what} {name!r} is missing{hint}; the policy reads {_describe(shapes)}")
            array = _checked(name, given[name], shape, what)
            inputs[name], single, batch = _batched(name, array, shape, single, what, batch)
    return inputs, bool(single)


def policy_outputs(action: np.ndarray, states: Mapping[str, np.ndarray],
                   single: bool) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """``(action, state)`` as ``predict`` returns them: without the batch axis for one observation;
    the state is None for a feed-forward policy."""
    if single:
        return action[0], ({k: v[0] for k, v in states.items()} if states else None)
    return action, (dict(states) if states else None)


class OnnxPolicy:
    """A policy exported by ``aquaml export``, run by onnxruntime: ``action, state = predict(obs, state)``.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (1 is fastest for one observation at a time).
        providers: onnxruntime execution providers (default: the CPU).
    """

    def __init__(self, path: str | Path, threads: int = 1, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        #: the model's metadata: observations, states, action, where it came from
        self.metadata: dict[str, Any] = {}
        for key, value in self.session.get_modelmeta().custom_metadata_map.items():
            try:
                self.metadata[key] = json.loads(value)
            except ValueError:
                self.metadata[key] = value
        inputs = {i.name: tuple(i.shape[1:]) for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if "action" not in outputs:
            raise ValueError(f"{path} is not an exported policy: it has no output 'action'")
        #: recurrent state name -> shape: an input ``<name>`` with an output ``next_<name>``
        self.state_shapes = {k: s for k, s in inputs.items() if NEXT + k in outputs}
        #: observation name -> shape of one observation
        self.obs_shapes = {k: s for k, s in inputs.items() if k not in self.state_shapes}
        self._outputs = ["action", *(NEXT + k for k in self.state_shapes)]

    def predict(self, obs: Any, state: Mapping[str, Any] | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """The action for ``obs`` (one observation or a batch) in the environment's units, and the
        recurrent state to pass with the next observation (None for a feed-forward policy)."""
        if not deterministic:
            raise ValueError("an exported policy is deterministic; sample actions with aquaml.load_policy")
        inputs, single = policy_inputs(obs, state, self.obs_shapes, self.state_shapes)
        action, *states = self.session.run(self._outputs, inputs)
        return policy_outputs(action, dict(zip(self.state_shapes, states)), single)
