"""The int8 quantization scheme shared by the PTQ quantizer, the converter and QAT.

One rule set, so a scale computed here means the same thing everywhere:
- symmetric, zero point always 0 (real = scale * q);
- activations are u8 (scale = amax / 255) when the graph guarantees they are non-negative (produced
  by Relu, Clip(min >= 0), Sigmoid, HardSigmoid, Softmax, or moved/pooled from such a tensor), else
  s8 (scale = amax / 127); u8 sources are what make oneDNN's int8 convolution fast;
- weights are s8 per output channel, scale[oc] = max|W[oc]| / 127, values in [-127, 127].
A zero range (a dead channel or activation) gets scale 1.0, so nothing ever divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx

QMAX_U8 = 255
QMAX_S8 = 127

# Ops whose output is >= 0 whatever their input (Clip only with a non-negative minimum).
NONNEGATIVE_OPS = frozenset({"Relu", "Sigmoid", "HardSigmoid", "Softmax", "Clip"})
# Ops whose output is >= 0 when all their (non-constant) inputs are.
SIGN_PRESERVING_OPS = frozenset(
    {
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Flatten",
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Concat",
        "Slice",
        "Split",
        "Resize",
        "Upsample",
    }
)


@dataclass(frozen=True)
class QParams:
    """Quantization of one tensor: real = scale * q, zero point 0; dtype is "uint8" or "int8"."""

    scale: float
    dtype: str

    @property
    def onnx_type(self) -> int:
        return onnx.TensorProto.UINT8 if self.dtype == "uint8" else onnx.TensorProto.INT8

    @property
    def qmax(self) -> int:
        return QMAX_U8 if self.dtype == "uint8" else QMAX_S8


def activation_qparams(lo: float, hi: float, unsigned: bool) -> QParams:
    """Symmetric scale for a calibrated range; `unsigned` comes from the graph, not from the data."""
    amax = max(abs(float(lo)), abs(float(hi)))
    qmax = QMAX_U8 if unsigned else QMAX_S8
    scale = float(np.float32(amax) / np.float32(qmax)) if amax > 0 else 1.0
    return QParams(scale, "uint8" if unsigned else "int8")


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


def clip_is_nonnegative(node: onnx.NodeProto, constant: Callable[[str], np.ndarray | None]) -> bool:
    """Clip's minimum (attribute before opset 11, input 1 after) is a known constant >= 0."""
    for attr in node.attribute:
        if attr.name == "min":
            return attr.f >= 0
    if len(node.input) > 1 and node.input[1]:
        value = constant(node.input[1])
        return value is not None and value.size == 1 and float(value.reshape(())) >= 0
    return False


def produces_nonnegative(node: onnx.NodeProto, constant: Callable[[str], np.ndarray | None]) -> bool:
    """The op alone guarantees a non-negative output (Relu-like)."""
    if node.op_type == "Clip":
        return clip_is_nonnegative(node, constant)
    return node.op_type in NONNEGATIVE_OPS


def nonnegative_tensors(graph: onnx.GraphProto, constants: Mapping[str, np.ndarray] | None = None) -> set[str]:
    """Names of the tensors the graph guarantees to be >= 0 (nodes must be in topological order)."""
    constants = dict(constants or {})
    protos = {t.name: t for t in graph.initializer}
    inits = set(protos)

    def constant(name: str) -> np.ndarray | None:
        if name not in constants and name in protos:
            constants[name] = onnx.numpy_helper.to_array(protos[name])
        return constants.get(name)

    result: set[str] = set()
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if produces_nonnegative(node, constant):
            result.update(o for o in node.output if o)
        elif node.op_type in SIGN_PRESERVING_OPS:
            # Only the data input(s) matter: shape/axes/roi inputs are initializers or integer tensors.
            data = [node.input[0]] if node.op_type != "Concat" else [i for i in node.input if i]
            if data and all(d in result or _nonnegative_constant(d, inits, constant) for d in data):
                result.update(o for o in node.output if o)
    return result


def _nonnegative_constant(name: str, inits: set[str], constant: Callable[[str], np.ndarray | None]) -> bool:
    if name not in inits:
        return False
    value = constant(name)
    return value is not None and value.dtype.kind == "f" and bool(np.all(value >= 0))
