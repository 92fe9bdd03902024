"""The int8 quantization scheme shared by the PTQ quantizer, the converter and QAT.

One rule set, so a scale computed here means the same thing everywhere:
- symmetric, zero point 0 (real = scale * q), with one exception below;
- activations are u8 (scale = amax / 255) when the graph guarantees they are non-negative (produced
  by Relu, Clip(min >= 0), Sigmoid, HardSigmoid, Softmax, or moved/pooled from such a tensor), else
  s8 (scale = amax / 127); u8 sources are what make oneDNN's int8 convolution fast;
- a signed activation whose calibrated range is one-sided (hard-swish's [-0.375, 20]: s8 spends half its
  levels on the short side) is u8 with a zero point (real = scale * (q - zp)) when every INT8 kernel
  that writes or reads it executes zero points (plan.zero_point_ok) and that grid is at least
  ASYMMETRIC_GAIN times finer than s8's;
- weights are s8 per output channel, scale[oc] = max|W[oc]| / 127, values in [-127, 127].
A zero range (a dead channel or activation) gets scale 1.0, so nothing ever divides by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from int8kit import op_table

QMAX_U8 = 255
QMAX_S8 = 127

# Ops whose output is >= 0 whatever their input (Clip only with a non-negative minimum).
NONNEGATIVE_OPS = frozenset(op_table.op_types(sign="nonnegative"))
# Ops whose output is >= 0 when all their (non-constant) inputs are.
SIGN_PRESERVING_OPS = frozenset(op_table.op_types(sign="preserving"))


# A zero point is used only where it refines the grid this much (1.5x: 3.5 dB more SQNR); a nearly
# symmetric range gains nothing that pays for the zero point's bookkeeping.
ASYMMETRIC_GAIN = 1.5


@dataclass(frozen=True)
class QParams:
    """Quantization of one tensor: real = scale * (q - zero_point); dtype is "uint8" or "int8"."""

    scale: float
    dtype: str
    zero_point: int = 0

    @property
    def onnx_type(self) -> int:
        return onnx.TensorProto.UINT8 if self.dtype == "uint8" else onnx.TensorProto.INT8

    @property
    def qmax(self) -> int:
        return QMAX_U8 if self.dtype == "uint8" else QMAX_S8


def activation_qparams(lo: float, hi: float, unsigned: bool, zero_point_ok: bool = False) -> QParams:
    """The scale (and zero point) for a calibrated range; `unsigned` and `zero_point_ok` come from the graph.

    Symmetric unless `zero_point_ok` and the range is one-sided enough (see ASYMMETRIC_GAIN): then u8 over
    [min(lo, 0), max(hi, 0)], so 0 stays exact (padding and ReLU zeros), with the zero point rounded.
    """
    lo, hi = float(lo), float(hi)
    amax = max(abs(lo), abs(hi))
    if zero_point_ok and not unsigned and one_sided(lo, hi):
        asym = float(np.float32(hi - lo) / np.float32(QMAX_U8))
        zero_point = int(np.clip(np.rint(-lo / asym), 0, QMAX_U8))
        return QParams(asym, "uint8", zero_point)
    qmax = QMAX_U8 if unsigned else QMAX_S8
    scale = float(np.float32(amax) / np.float32(qmax)) if amax > 0 else 1.0
    return QParams(scale, "uint8" if unsigned else "int8")


def one_sided(lo: float, hi: float) -> bool:
    """A range crossing 0 that u8 with a zero point covers at least ASYMMETRIC_GAIN times finer than s8."""
    lo, hi = float(lo), float(hi)
    return lo < 0 < hi and (hi - lo) / QMAX_U8 * ASYMMETRIC_GAIN <= max(-lo, hi) / QMAX_S8


def weight_scales(w: np.ndarray, axis: int) -> np.ndarray:
    """Per-channel symmetric s8 scales along `axis` (the output channels): max|W[c]| / 127, float32."""
    w = np.asarray(w, dtype=np.float32)
    axis = axis % w.ndim
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=reduce) if reduce else np.abs(w)
    scales = amax / np.float32(QMAX_S8)
    return np.where(amax > 0, scales, np.float32(1.0)).astype(np.float32)


def quantize_weight(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, float32 per-channel scales), rounding half to even like ONNX QuantizeLinear."""
    w = np.asarray(w, dtype=np.float32)
    scales = weight_scales(w, axis)
    shape = [1] * w.ndim
    shape[axis % w.ndim] = -1
    q = np.clip(np.rint(w / scales.reshape(shape)), -QMAX_S8, QMAX_S8).astype(np.int8)
    return q, scales


def _constant(value: ir.Value | None) -> np.ndarray | None:
    return None if value is None or value.const_value is None else value.const_value.numpy()


def clip_is_nonnegative(node: ir.Node) -> bool:
    """Clip's minimum (attribute before opset 11, input 1 after) is a known constant >= 0."""
    attr = node.attributes.get("min")
    if attr is not None:
        return attr.as_float() >= 0
    value = _constant(node.inputs[1]) if len(node.inputs) > 1 else None
    return value is not None and value.size == 1 and float(value.reshape(())) >= 0


def produces_nonnegative(node: ir.Node) -> bool:
    """The op alone guarantees a non-negative output (Relu-like)."""
    if node.op_type == "Clip":
        return clip_is_nonnegative(node)
    return node.op_type in NONNEGATIVE_OPS


def nonnegative_tensors(graph: ir.Graph | onnx.GraphProto) -> set[str]:
    """Names of the tensors the graph guarantees to be >= 0 (nodes must be in topological order)."""
    if isinstance(graph, onnx.GraphProto):
        graph = ir.serde.deserialize_graph(graph)
    result: set[str] = set()
    for node in graph:
        if node.domain not in ("", "ai.onnx"):
            continue
        if produces_nonnegative(node):
            result.update(o.name for o in node.outputs if o.name)
        elif node.op_type in SIGN_PRESERVING_OPS:
            # Only the data input(s) matter: shape/axes/roi inputs are initializers or integer tensors.
            many = op_table.spec(node.op_type).many_inputs
            data = [i for i in node.inputs if i is not None] if many else node.inputs[:1]
            if data and all(d is not None and (d.name in result or _nonnegative_constant(d)) for d in data):
                result.update(o.name for o in node.outputs if o.name)
    return result


def clip_is_bounded(node: ir.Node) -> bool:
    """Clip's maximum (attribute before opset 11, input 2 after) is a known constant: ReLU6 and the like."""
    if "max" in node.attributes:
        return True
    value = _constant(node.inputs[2]) if len(node.inputs) > 2 else None
    return value is not None and value.size == 1


def produces_bounded(node: ir.Node) -> bool:
    """The op alone bounds its output to a fixed interval (op_table's `bounded`; Clip with a constant max)."""
    row = op_table.spec(node.op_type)
    if row is None or not row.bounded:
        return False
    return clip_is_bounded(node) if node.op_type == "Clip" else True


def bounded_tensors(graph: ir.Graph | onnx.GraphProto) -> set[str]:
    """Names of the tensors whose values an op of the graph bounds, directly or moved/averaged from such tensors.

    Their calibrated range needs no clipping: the op already cut the tails, and the values piled up at the
    bound (a saturated ReLU6 or sigmoid) are a large share of the data, not rare outliers.
    """
    if isinstance(graph, onnx.GraphProto):
        graph = ir.serde.deserialize_graph(graph)
    result: set[str] = set()
    for node in graph:
        if node.domain not in ("", "ai.onnx"):
            continue
        row = op_table.spec(node.op_type)
        if produces_bounded(node):
            result.update(o.name for o in node.outputs if o.name)
        elif row is not None and row.grid in ("same", "average") and row.role in ("data_movement", "averaging"):
            data = [i for i in node.inputs if i is not None] if row.many_inputs else node.inputs[:1]
            if data and all(d is not None and (d.name in result or d.is_initializer()) for d in data):
                result.update(o.name for o in node.outputs if o.name)
    return result


def _nonnegative_constant(value: ir.Value) -> bool:
    array = _constant(value) if value.is_initializer() else None
    return array is not None and array.dtype.kind == "f" and bool(np.all(array >= 0))
