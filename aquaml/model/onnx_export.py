"""JAX functions as ONNX graphs, written with ``onnx.helper``: the converter behind ``aquaml export``.

:func:`to_onnx` traces a function of named arrays with a symbolic batch size (``jax.make_jaxpr``) and
writes each JAX operation of the trace as ONNX operators (opset :data:`OPSET`). A Keras model on the JAX
backend is such a trace whatever its layers (Dense with any activation, LSTM, GRU and SimpleRNN as a
``lax.scan``, unrolled here, concatenation, layer normalisation, reshapes), and so is what an algorithm
computes around it (observation normalisation, tanh squashing, rescaling, argmax). Operations that
depend only on the parameters are evaluated with JAX while converting and stored as constants, so the
graph holds the operations that depend on the inputs, each as XLA computes it. An operation without a
translation raises :class:`UnsupportedOperation` naming the Keras layer it belongs to.

Needs the ``onnx`` package (``pip install aquaml[deploy]``); the training stack never imports this module.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export
from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, Literal, jaxpr_as_fun

from aquaml.tools.imports import optional_import

onnx = optional_import("onnx", "exporting to ONNX", "deploy")
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

#: the ONNX operator set written (onnxruntime >= 1.13 runs it)
OPSET = 17
#: the ONNX file format version written (the oldest one that carries opset 17)
IR_VERSION = 8
#: the name of the batch dimension of every input and output
BATCH = "batch"
_INT64_MAX = np.iinfo(np.int64).max


class UnsupportedOperation(ValueError):
    """A function (a model's layer) uses a JAX operation the converter does not translate."""


_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "tanh": "Tanh", "logistic": "Sigmoid", "sqrt": "Sqrt",
          "abs": "Abs", "sign": "Sign", "floor": "Floor", "ceil": "Ceil", "sin": "Sin", "cos": "Cos",
          "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
          "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "erf": "Erf", "not": "Not"}
_BINARY = {"add": "Add", "add_any": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max",
           "min": "Min", "pow": "Pow", "gt": "Greater", "lt": "Less", "ge": "GreaterOrEqual",
           "le": "LessOrEqual", "eq": "Equal", "and": "And", "or": "Or", "xor": "Xor"}
#: operations that pass their operands through unchanged (at inference)
_PASS = {"copy", "copy_p", "optimization_barrier", "sharding_constraint", "device_put", "stop_gradient"}
#: operations that call a sub-function, and the parameter holding it
_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
          "remat": "jaxpr", "checkpoint": "jaxpr"}
_REDUCE = {"reduce_sum": "ReduceSum", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
           "reduce_prod": "ReduceProd"}


def _static(dim) -> bool:
    return isinstance(dim, (int, np.integer))


def _same(a, b) -> bool:
    return str(a) == str(b)


def _dtype(aval) -> np.dtype:
    return np.dtype(aval.dtype)


def _is_zero(value) -> bool:
    """A constant scalar zero (``max(x, 0)`` is a ReLU)."""
    return not isinstance(value, str) and np.ndim(value) == 0 and float(np.asarray(value)) == 0.0


def _live(jaxpr: Jaxpr, wanted: Sequence[bool]) -> tuple[list, set]:
    """The equations the wanted outputs depend on, in order, and every variable they read or write."""
    live = {v for v, w in zip(jaxpr.outvars, wanted) if w and not isinstance(v, Literal)}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outvars if not isinstance(v, DropVar)):
            kept.append(eqn)
            live.update(v for v in eqn.invars if not isinstance(v, Literal))
    return kept[::-1], live


class _Converter:
    """Writes ONNX nodes for the equations of a jaxpr; values are ONNX tensor names or NumPy constants."""

    def __init__(self, dims: Mapping[str, tuple[str, int]], layer_types: Mapping[str, str]) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._small: dict[tuple, str] = {}
        self._count = 0
        self._dims = dict(dims)  # symbolic dimension -> (input name, axis) to read it from
        self._dim_names: dict[str, str] = {}
        self._layer_types = dict(layer_types)

    # -- values ------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def name(self, value) -> str:
        """The tensor name of ``value``, a constant becoming an initializer (small ones shared)."""
        if isinstance(value, str):
            return value
        array = np.asarray(value)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._small:
            return self._small[key]
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._small[key] = name
        return name

    def node(self, op: str, inputs: Sequence, outputs: int = 1, **attrs) -> Any:
        """Append an ``op`` node; its output name (a list of them when ``outputs > 1``)."""
        names = [self.fresh(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, [self.name(x) for x in inputs], names, **attrs))
        return names if outputs > 1 else names[0]

    def shape(self, dims: Sequence, minus_one: bool = False) -> Any:
        """A 1-D int64 tensor of ``dims``; symbolic dimensions are read from an input's shape (or, with
        ``minus_one`` and a single one, left to ``Reshape`` as -1)."""
        if all(_static(d) for d in dims):
            return np.array([int(d) for d in dims], np.int64)
        symbolic = [i for i, d in enumerate(dims) if not _static(d)]
        if minus_one and len(symbolic) == 1:
            return np.array([-1 if i == symbolic[0] else int(d) for i, d in enumerate(dims)], np.int64)
        return self.node("Concat", [np.array([int(d)], np.int64) if _static(d) else self.dim(d) for d in dims],
                         axis=0)

    def dim(self, d) -> str:
        """A 1-element int64 tensor holding the value of the symbolic dimension ``d``."""
        key = str(d)
        if key not in self._dims:
            raise UnsupportedOperation(f"a shape that depends on the batch size as {key}")
        if key not in self._dim_names:
            source, axis = self._dims[key]
            self._dim_names[key] = self.node("Shape", [source], start=axis, end=axis + 1)
        return self._dim_names[key]

    # -- jaxprs ------------------------------------------------------------------------------
    def run(self, jaxpr: Jaxpr, consts: Sequence, args: Sequence, wanted: Sequence[bool], scope: str = "") -> list:
        """Write the equations the ``wanted`` outputs of ``jaxpr`` need; their values (None if not wanted)."""
        env: dict = dict(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))

        def read(atom):
            return np.asarray(atom.val, _dtype(atom.aval)) if isinstance(atom, Literal) else env[atom]

        eqns, live = _live(jaxpr, wanted)
        for eqn in eqns:
            ins = [read(a) for a in eqn.invars]
            outs = [not isinstance(v, DropVar) and v in live for v in eqn.outvars]
            if all(not isinstance(x, str) for x in ins) and all(
                    all(_static(d) for d in v.aval.shape) for v in eqn.outvars):
                values = self.fold(eqn, ins)
            else:
                values = self.equation(eqn, ins, outs, f"{scope}/{eqn.source_info.name_stack}")
            for v, value in zip(eqn.outvars, values):
                if not isinstance(v, DropVar):
                    env[v] = value
        return [read(v) if w else None for v, w in zip(jaxpr.outvars, wanted)]

    @staticmethod
    def fold(eqn, ins: Sequence) -> list:
        """Evaluate an equation on constants with JAX (parameters' preprocessing, shapes, iotas); the
        results stay JAX arrays (random keys among them) until a node reads them."""
        invars = [v for v in eqn.invars if not isinstance(v, Literal)]
        args = [x for v, x in zip(eqn.invars, ins) if not isinstance(v, Literal)]
        outvars = [v for v in eqn.outvars if not isinstance(v, DropVar)]
        single = Jaxpr([], invars, outvars, [eqn])
        values = iter(jaxpr_as_fun(ClosedJaxpr(single, []))(*args))
        return [None if isinstance(v, DropVar) else next(values) for v in eqn.outvars]

    def layer(self, scope: str) -> str:
        """Where an equation comes from, for error messages: its Keras layer, if any."""
        parts = [p for p in scope.split("/") if p]
        for part in reversed(parts):
            if part in self._layer_types:
                return f"layer {part!r} ({self._layer_types[part]})"
        return f"layer {parts[0]!r}" if parts else "the computation around the model"

    def equation(self, eqn, ins: list, outs: list[bool], scope: str) -> list:
        name = eqn.primitive.name
        rule = getattr(self, f"_{name}", None)
        if name in _UNARY:
            return [self.node(_UNARY[name], ins)]
        if name == "max" and any(_is_zero(x) for x in ins):  # relu: a node onnxruntime fuses with the product
            return [self.node("Relu", [next(x for x in ins if not _is_zero(x))])]
        if name in _BINARY:
            return [self.node(_BINARY[name], ins)]
        if name in _REDUCE:
            return [self.reduce(_REDUCE[name], ins[0], eqn.params["axes"])]
        if name in _PASS:
            return list(ins)
        if name in _CALLS:
            sub = eqn.params[_CALLS[name]]
            closed = sub if isinstance(sub, ClosedJaxpr) else ClosedJaxpr(sub, [])
            return self.run(closed.jaxpr, list(closed.consts), ins, outs, scope)
        if rule is None:
            raise UnsupportedOperation(
                f"cannot export {self.layer(scope)}: its JAX operation {name!r} has no ONNX translation (supported: "
                "Dense with any activation, LSTM, GRU, SimpleRNN, concatenation, reshapes, LayerNormalization, "
                "elementwise arithmetic; see docs/deploy.md)")
        return rule(eqn, ins, outs, scope)

    def reduce(self, op: str, x, axes: Sequence[int]) -> str:
        if not axes:
            return self.node("Identity", [x])
        if op == "ReduceSum":  # axes became an input in opset 13, for the others in 18
            return self.node(op, [x, np.array(axes, np.int64)], keepdims=0)
        return self.node(op, [x], axes=list(axes), keepdims=0)

    # -- rules, one per JAX operation (``_<name>``) ---------------------------------------------
    def _convert_element_type(self, eqn, ins, outs, scope):
        new = np.dtype(eqn.params["new_dtype"])
        if new == _dtype(eqn.invars[0].aval):
            return ins
        return [self.node("Cast", ins, to=helper.np_dtype_to_tensor_dtype(new))]

    def _reshape(self, eqn, ins, outs, scope):
        if eqn.params.get("dimensions") is not None:
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a reshape with dimensions")
        return [self.node("Reshape", [ins[0], self.shape(eqn.params["new_sizes"], minus_one=True)])]

    def _broadcast_in_dim(self, eqn, ins, outs, scope):
        source, target = eqn.invars[0].aval.shape, eqn.params["shape"]
        middle = [1] * len(target)
        for i, d in enumerate(eqn.params["broadcast_dimensions"]):
            middle[d] = source[i]
        x = ins[0]
        if len(middle) != len(source) or not all(_same(a, b) for a, b in zip(middle, source)):
            x = self.node("Reshape", [x, self.shape(middle, minus_one=True)])
        expand = [1 if _same(m, t) else t for m, t in zip(middle, target)]
        if any(not _same(e, 1) for e in expand):
            x = self.node("Expand", [x, self.shape(expand)])
        return [x]

    def _squeeze(self, eqn, ins, outs, scope):
        return [self.node("Squeeze", [ins[0], np.array(eqn.params["dimensions"], np.int64)])]

    def _expand_dims(self, eqn, ins, outs, scope):
        return [self.node("Unsqueeze", [ins[0], np.array(eqn.params["dimensions"], np.int64)])]

    def _concatenate(self, eqn, ins, outs, scope):
        return [self.node("Concat", ins, axis=int(eqn.params["dimension"]))]

    def _split(self, eqn, ins, outs, scope):
        sizes = eqn.params["sizes"]
        if not all(_static(s) for s in sizes):
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a split along the batch axis")
        result = self.node("Split", [ins[0], np.array(sizes, np.int64)], outputs=len(sizes),
                           axis=int(eqn.params["axis"]))
        return result if len(sizes) > 1 else [result]

    def _slice(self, eqn, ins, outs, scope):
        shape = eqn.invars[0].aval.shape
        strides = eqn.params["strides"] or (1,) * len(shape)
        axes, starts, ends, steps = [], [], [], []
        for i, (start, limit, step) in enumerate(zip(eqn.params["start_indices"], eqn.params["limit_indices"],
                                                      strides)):
            if _same(start, 0) and _same(limit, shape[i]) and step == 1:
                continue
            if not _static(start) or not (_static(limit) or _same(limit, shape[i])):
                raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a slice of the batch axis")
            axes.append(i)
            starts.append(int(start))
            ends.append(int(limit) if _static(limit) else _INT64_MAX)
            steps.append(int(step))
        if not axes:
            return [self.node("Identity", ins)]
        return [self.node("Slice", [ins[0], *(np.array(v, np.int64) for v in (starts, ends, axes, steps))])]

    def _transpose(self, eqn, ins, outs, scope):
        return [self.node("Transpose", ins, perm=[int(p) for p in eqn.params["permutation"]])]

    def _dot_general(self, eqn, ins, outs, scope):
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = (v.aval for v in eqn.invars)
        if not lb and tuple(lc) == (len(lhs.shape) - 1,) and tuple(rc) == (0,) and len(rhs.shape) <= 2:
            out = self.node("MatMul", ins)  # x @ W, the Dense layer's product
        else:
            letters = iter("abcdefghijklmnopqrstuvwxyz")
            left = [next(letters) for _ in lhs.shape]
            right = [next(letters) for _ in rhs.shape]
            for i, j in [*zip(lc, rc), *zip(lb, rb)]:
                right[j] = left[i]
            result = ([left[i] for i in lb] + [c for i, c in enumerate(left) if i not in lc and i not in lb]
                      + [c for j, c in enumerate(right) if j not in rc and j not in rb])
            out = self.node("Einsum", ins, equation=f"{''.join(left)},{''.join(right)}->{''.join(result)}")
        wanted = _dtype(eqn.outvars[0].aval)
        if wanted != _dtype(lhs):
            out = self.node("Cast", [out], to=helper.np_dtype_to_tensor_dtype(wanted))
        return [out]

    def _argmax(self, eqn, ins, outs, scope, op: str = "ArgMax"):
        (axis,) = eqn.params["axes"]
        index = self.node(op, ins, axis=int(axis), keepdims=0)
        return [self.node("Cast", [index], to=helper.np_dtype_to_tensor_dtype(np.dtype(eqn.params["index_dtype"])))]

    def _argmin(self, eqn, ins, outs, scope):
        return self._argmax(eqn, ins, outs, scope, "ArgMin")

    def _select_n(self, eqn, ins, outs, scope):
        which, *cases = ins
        if len(cases) == 1:
            return cases
        if _dtype(eqn.invars[0].aval) == np.bool_:
            return [self.node("Where", [which, cases[1], cases[0]])]
        out = cases[0]
        index_type = _dtype(eqn.invars[0].aval)
        for i, case in enumerate(cases[1:], 1):
            out = self.node("Where", [self.node("Equal", [which, np.array(i, index_type)]), case, out])
        return [out]

    def _clamp(self, eqn, ins, outs, scope):
        low, x, high = ins
        if all(not isinstance(v, str) and np.ndim(v) == 0 for v in (low, high)):
            return [self.node("Clip", [x, np.asarray(low), np.asarray(high)])]
        return [self.node("Min", [self.node("Max", [x, low]), high])]

    def _ne(self, eqn, ins, outs, scope):
        return [self.node("Not", [self.node("Equal", ins)])]

    @staticmethod
    def unit(eqn) -> np.ndarray:
        """A scalar 1 of the equation's operand type."""
        return np.array(1, _dtype(eqn.invars[0].aval))

    def _rsqrt(self, eqn, ins, outs, scope):
        return [self.node("Div", [self.unit(eqn), self.node("Sqrt", ins)])]

    def _erfc(self, eqn, ins, outs, scope):
        return [self.node("Sub", [self.unit(eqn), self.node("Erf", ins)])]

    def _expm1(self, eqn, ins, outs, scope):
        return [self.node("Sub", [self.node("Exp", ins), self.unit(eqn)])]

    def _log1p(self, eqn, ins, outs, scope):
        return [self.node("Log", [self.node("Add", [ins[0], self.unit(eqn)])])]

    def _exp2(self, eqn, ins, outs, scope):
        return [self.node("Pow", [np.array(2, _dtype(eqn.invars[0].aval)), ins[0]])]

    def _square(self, eqn, ins, outs, scope):
        return [self.node("Mul", [ins[0], ins[0]])]

    def _integer_pow(self, eqn, ins, outs, scope):
        """``x ** y`` by repeated squaring, the products XLA computes."""
        y, x, acc = int(eqn.params["y"]), ins[0], None
        if y == 0:
            return [self.node("Expand", [self.unit(eqn), self.node("Shape", [x])])]
        n = abs(y)
        while n:
            if n & 1:
                acc = x if acc is None else self.node("Mul", [acc, x])
            n >>= 1
            if n:
                x = self.node("Mul", [x, x])
        return [self.node("Div", [self.unit(eqn), acc]) if y < 0 else acc]

    def _is_finite(self, eqn, ins, outs, scope):
        return [self.node("Not", [self.node("Or", [self.node("IsInf", ins), self.node("IsNaN", ins)])])]

    def _round(self, eqn, ins, outs, scope):
        if int(eqn.params["rounding_method"]) == 1:  # to nearest even, as ONNX rounds
            return [self.node("Round", ins)]
        half = np.array(0.5, _dtype(eqn.invars[0].aval))
        away = self.node("Floor", [self.node("Add", [self.node("Abs", ins), half])])
        return [self.node("Mul", [self.node("Sign", ins), away])]

    def _rem(self, eqn, ins, outs, scope):
        return [self.node("Mod", ins, fmod=1)]

    def _reduce_precision(self, eqn, ins, outs, scope):
        info = np.finfo(_dtype(eqn.invars[0].aval))
        if (eqn.params["exponent_bits"], eqn.params["mantissa_bits"]) != (info.nexp, info.nmant):
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a reduced-precision computation")
        return ins

    def _cumsum(self, eqn, ins, outs, scope):
        return [self.node("CumSum", [ins[0], np.array(eqn.params["axis"], np.int64)],
                          reverse=int(eqn.params["reverse"]))]

    def _pad(self, eqn, ins, outs, scope):
        config = eqn.params["padding_config"]
        if any(interior or low < 0 or high < 0 for low, high, interior in config):
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: an interior or negative padding")
        pads = np.array([c[0] for c in config] + [c[1] for c in config], np.int64)
        return [self.node("Pad", [ins[0], pads, ins[1]], mode="constant")]

    def _scan(self, eqn, ins, outs, scope):
        """A ``lax.scan`` of static length (a recurrent layer over its sequence), unrolled."""
        p = eqn.params
        body, length, n_consts, n_carry = p["jaxpr"], int(p["length"]), p["num_consts"], p["num_carry"]
        consts, carry, xs = ins[:n_consts], list(ins[n_consts:n_consts + n_carry]), ins[n_consts + n_carry:]
        n_ys = len(eqn.outvars) - n_carry
        wanted = list(outs[:n_carry]) + list(outs[n_carry:])
        while True:  # a carry is wanted if a wanted output of any step reads it
            _, live = _live(body.jaxpr, wanted)
            needed = [w or v in live for w, v in zip(wanted[:n_carry], body.jaxpr.invars[n_consts:])]
            if needed == wanted[:n_carry]:
                break
            wanted[:n_carry] = needed
        steps = range(length - 1, -1, -1) if p["reverse"] else range(length)
        ys: list[list] = [[] for _ in range(n_ys)]
        for t in steps:
            x_t = [self.node("Gather", [x, np.array(t, np.int64)], axis=0) if isinstance(x, str) else x[t]
                   for x in xs]
            result = self.run(body.jaxpr, list(body.consts), [*consts, *carry, *x_t], wanted, scope)
            carry = result[:n_carry]
            for k, y in enumerate(result[n_carry:]):
                ys[k].append(y)
        stacked = []
        for k, (values, w) in enumerate(zip(ys, outs[n_carry:])):
            if not w:
                stacked.append(None)
                continue
            values = values[::-1] if p["reverse"] else values
            stacked.append(self.node("Concat", [self.node("Unsqueeze", [v, np.array([0], np.int64)])
                                                for v in values], axis=0))
        return [*carry, *stacked]

    def _gather(self, eqn, ins, outs, scope):
        """Indexing along one axis (``x[:, t]``, ``x[idx]``): ONNX ``Gather``."""
        p, shape = eqn.params, eqn.invars[0].aval.shape
        dn, sizes = p["dimension_numbers"], p["slice_sizes"]
        index_shape = eqn.invars[1].aval.shape
        batch = len(index_shape) - 1
        axis = dn.start_index_map[0] if len(dn.start_index_map) == 1 else None
        fits = (axis is not None and not dn.operand_batching_dims and index_shape[-1:] == (1,)
                and _same(sizes[axis], 1)
                and all(_same(s, d) for i, (s, d) in enumerate(zip(sizes, shape)) if i != axis))
        collapsed = tuple(dn.collapsed_slice_dims) == (axis,)
        if fits and collapsed:
            fits = tuple(dn.offset_dims) == (*range(axis), *range(axis + batch, len(shape) - 1 + batch))
        elif fits:
            fits = not dn.collapsed_slice_dims and batch == 0 and tuple(dn.offset_dims) == tuple(range(len(shape)))
        if not fits:
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a gather other than indexing one axis")
        index = ins[1]
        if collapsed:
            index = (np.asarray(index).reshape(index_shape[:-1]) if not isinstance(index, str) else
                     self.node("Squeeze", [index, np.array([-1], np.int64)]))
        return [self.node("Gather", [ins[0], index], axis=int(axis))]

    def _sort(self, eqn, ins, outs, scope):
        """Sorting one array along an axis of static size (sparsemax): ``TopK`` over all of it, ascending."""
        axis = int(eqn.params["dimension"])
        size = eqn.invars[0].aval.shape[axis]
        if len(ins) != 1 or not _static(size):
            raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a sort of several arrays or the batch")
        values, _ = self.node("TopK", [ins[0], np.array([size], np.int64)], outputs=2, axis=axis, largest=0,
                              sorted=1)
        return [values]

    def _iota(self, eqn, ins, outs, scope):
        raise UnsupportedOperation(f"cannot export {self.layer(scope)}: a range whose size is the batch size")


def _onnx_type(dtype: np.dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def to_onnx(fn: Callable[[dict], Mapping[str, Any]], inputs: Mapping[str, tuple[int, ...]], *,
            layer_types: Mapping[str, str] | None = None, graph_name: str = "policy",
            metadata: Mapping[str, str] | None = None, doc: str = "") -> "onnx.ModelProto":
    """``fn`` as an ONNX model.

    Args:
        fn: a JAX-traceable function of a dict of named float32 arrays (each ``(batch, *shape)``) that
            returns a dict of named arrays, each with the batch axis first.
        inputs: name -> shape of one sample; the model's inputs, float32 ``[batch, *shape]``.
        layer_types: Keras layer name -> class name, to name the layer an unsupported operation is in.
        metadata: written as the model's metadata properties.

    The outputs are named after ``fn``'s keys, in its order; integer outputs are int64. Raises
    :class:`UnsupportedOperation` at the first operation without a translation.
    """
    (batch,) = jax_export.symbolic_shape(BATCH)
    specs = {k: jax.ShapeDtypeStruct((batch, *map(int, s)), jnp.float32) for k, s in inputs.items()}
    order: list[str] = []

    def traced(named):
        out = fn(named)
        order[:] = list(out) if isinstance(out, Mapping) else []
        return out

    closed, out_shapes = jax.make_jaxpr(traced, return_shape=True)(specs)
    in_names = [path[0].key for path, _ in jax.tree_util.tree_flatten_with_path(specs)[0]]
    out_paths = jax.tree_util.tree_flatten_with_path(out_shapes)[0]
    if not isinstance(out_shapes, Mapping) or any(len(path) != 1 for path, _ in out_paths):
        raise TypeError("the function to export must return a dict of arrays")
    flat_names = [path[0].key for path, _ in out_paths]
    converter = _Converter({BATCH: (in_names[0], 0)} if in_names else {}, layer_types or {})
    values = converter.run(closed.jaxpr, list(closed.consts), in_names, [True] * len(flat_names))
    results = dict(zip(flat_names, values))
    avals = dict(zip(flat_names, (v.aval for v in closed.jaxpr.outvars)))
    taken = set(in_names)
    for name in order:
        value, dtype = results[name], _dtype(avals[name])
        if dtype.kind in "iu" and dtype != np.int64:
            converter.nodes.append(helper.make_node("Cast", [converter.name(value)], [name], to=TensorProto.INT64))
        elif not isinstance(value, str) or value in taken:
            converter.nodes.append(helper.make_node("Identity", [converter.name(value)], [name]))
        else:
            _rename(converter.nodes, value, name)
        taken.add(value if isinstance(value, str) else name)

    def dims(shape):
        return [d if _static(d) else BATCH for d in shape]

    graph = helper.make_graph(
        converter.nodes, graph_name,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [BATCH, *map(int, s)]) for k, s in inputs.items()],
        [helper.make_tensor_value_info(k, TensorProto.INT64 if _dtype(avals[k]).kind in "iu" else
                                       _onnx_type(_dtype(avals[k])), dims(avals[k].shape)) for k in order],
        initializer=converter.initializers, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="aquaml",
                              ir_version=IR_VERSION)
    if metadata:
        helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def _rename(nodes: list, old: str, new: str) -> None:
    """Give the tensor ``old`` the name ``new`` everywhere (an output takes its graph name)."""
    for node in nodes:
        for seq in (node.input, node.output):
            for i, name in enumerate(seq):
                if name == old:
                    seq[i] = new


def keras_layer_types(model) -> dict[str, str]:
    """Layer name -> class name of every layer in a Keras model (for :func:`to_onnx`'s messages)."""
    found, stack = {}, [model] if model is not None else []
    while stack:
        layer = stack.pop()
        found.setdefault(layer.name, type(layer).__name__)
        stack.extend(getattr(layer, "_layers", None) or getattr(layer, "layers", None) or ())
    return found
