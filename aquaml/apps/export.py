"""``aquaml export RUN_DIR --out policy.onnx``: a run's deterministic policy as an ONNX model.

The graph is :meth:`aquaml.sampler.Policy.env_actions` converted by
:func:`aquaml.model.onnx_export.to_onnx`: the actor with everything ``predict`` applies (observation
normalisation, tanh squashing or argmax, the environment's action rescaling). Its inputs are the
actor's observations and recurrent states (float32 ``[batch, *shape]``), its outputs ``action`` and
``next_<state>`` per state. After writing, the file is run with onnxruntime on random observations
and compared with ``predict``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aquaml.deploy import NEXT, OnnxPolicy
from aquaml.model.onnx_export import keras_layer_types, to_onnx
from aquaml.sampler import Policy
from aquaml.tools.imports import optional_import
from aquaml.tools.versions import package_versions

#: observations drawn for the check after writing
CHECK_SAMPLES = 256


@dataclass
class ExportSummary:
    """What :func:`export_policy` wrote and how closely the file reproduces ``predict``."""

    path: Path
    inputs: dict[str, tuple[int, ...]]  #: input name -> shape of one sample (observations, then states)
    outputs: dict[str, tuple[int, ...]]  #: output name -> shape of one sample
    discrete: bool
    max_difference: float  #: max |ONNX - predict| over random observations (and states)

    def describe(self) -> str:
        def fmt(shapes):
            return ", ".join(f"{k} [batch, {', '.join(map(str, s))}]".replace(", ]", "]") for k, s in shapes.items())

        kind = "int64 index" if self.discrete else "float32, in the environment's units"
        return (f"wrote {self.path}\n  inputs (float32): {fmt(self.inputs)}\n  outputs: {fmt(self.outputs)} "
                f"(action: {kind})\n  max |onnx - predict| over {CHECK_SAMPLES} random observations: "
                f"{self.max_difference:.2e}")


def policy_metadata(policy: Policy) -> dict[str, str]:
    """What the file records about the policy (JSON values): observations, states, action, source."""
    units = policy.action_units
    action: dict = {"discrete": bool(units is not None and units.discrete)}
    if units is not None and not units.discrete:
        action.update(low=np.asarray(units.low).tolist(), high=np.asarray(units.high).tolist())
    elif units is not None:
        action.update(start=units.start)
    else:
        action["units"] = "the actor's [-1, 1]; the environment scales them inside step"
    return {"aquaml.observations": json.dumps({k: list(s) for k, s in policy.observation_shapes.items()}),
            "aquaml.states": json.dumps({k: list(s) for k, s in policy.state_outputs.items()}),
            "aquaml.action": json.dumps(action), "aquaml.source": policy.source,
            "aquaml.versions": json.dumps({k: package_versions()[k] for k in ("aquaml", "jax", "keras")})}


def policy_onnx(policy: Policy):
    """The ONNX model of ``policy``'s deterministic actions (see :meth:`Policy.env_actions`)."""
    inputs = {**policy.observation_shapes, **policy.state_outputs}
    return to_onnx(policy.env_actions, inputs, layer_types=keras_layer_types(policy.model),
                   metadata=policy_metadata(policy), doc=f"aquaml policy of {policy.source}")


def random_inputs(policy: Policy, n: int, rng: np.random.Generator) -> tuple[dict, dict | None]:
    """``n`` random observations (and states, for a recurrent actor) of the policy's shapes."""
    obs = {k: rng.normal(0.0, 2.0, (n, *s)).astype(np.float32) for k, s in policy.observation_shapes.items()}
    states = {k: rng.uniform(-1.0, 1.0, (n, *s)).astype(np.float32) for k, s in policy.state_outputs.items()}
    return obs, states or None


def max_difference(a, b) -> float:
    """The largest absolute difference between two ``(action, state)`` results of ``predict``."""
    (action_a, state_a), (action_b, state_b) = a, b
    diffs = [np.max(np.abs(np.asarray(action_a, np.float64) - action_b), initial=0.0)]
    diffs += [np.max(np.abs(state_a[k] - state_b[k]), initial=0.0) for k in (state_a or {})]
    return float(max(diffs))


def export_policy(policy: Policy, out: str | Path, seed: int = 0) -> ExportSummary:
    """Write ``policy`` to ``out`` as ONNX, then check the file against ``predict``."""
    onnx = optional_import("onnx", "aquaml export", "deploy")
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {out}: name the file PATH.onnx")
    model = policy_onnx(policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out)
    obs, states = random_inputs(policy, CHECK_SAMPLES, np.random.default_rng(seed))
    diff = max_difference(OnnxPolicy(out).predict(obs, states), policy.predict(obs, states))
    units = policy.action_units
    outputs = {o.name: tuple(d.dim_value for d in o.type.tensor_type.shape.dim[1:]) for o in model.graph.output}
    return ExportSummary(out, {**policy.observation_shapes, **policy.state_outputs},
                         {k: outputs[k] for k in ("action", *(NEXT + s for s in policy.state_outputs))},
                         bool(units is not None and units.discrete), diff)
