"""The `int8kit` ONNX domain: the fused operators that optimised FP32 and converted INT8 models hold.

Every model int8kit writes stays a plain ONNX file, so Netron and friends can show it; the fused ops
live in the custom domain DOMAIN and carry everything the runtime needs as explicit attributes.

Conv(X, W, B?, Sum?) -> Y                       (domain DOMAIN)
    strides, pads ([top, left, bottom, right]), dilations, group: as in ONNX Conv (2-D only).
    post_ops: STRINGS, applied in order after `acc + B`, e.g. ["sum", "relu"]; see POST_OPS.
        "sum" adds input 4 (Sum, same shape as Y); it must appear at most once.
        "fq:s:zp:qmin:qmax" = (clip(round(v / s + zp), qmin, qmax) - zp) * s (a Q -> DQ pair).
    FP32 when W is float. INT8 when W is an int8 initializer; then also:
        x_scale: FLOAT          scale of X (real = scale * (q - x_zero_point))
        x_zero_point: INT       zero point of X (default 0)
        w_scales: FLOATS        one per output channel (symmetric int8 weights)
        y_scale: FLOAT          scale of Y when y_type is UINT8/INT8 (absent for FLOAT)
        y_zero_point: INT       zero point of Y (default 0)
        y_type: INT             ONNX TensorProto elem type of Y: FLOAT=1, UINT8=2, INT8=3
        sum_scale: FLOAT        scale of Sum when Sum is int8 (absent when Sum is float)
        sum_zero_point: INT     zero point of Sum (default 0)
    B stays float32 (oneDNN adds it after applying x_scale * w_scale).
    precision: STRING       "bf16" on a float node: run it in bf16 (bf16 X and W, f32 B and accumulation;
                            Y in bf16 where every reader takes bf16, else float32) on CPUs with AMX or
                            avx512_bf16; elsewhere it runs FP32 with a warning. "fp32" or absent: FP32
                            (unless the Predictor's precision is "bf16"). `convert --bf16-nodes` sets it.

Dense(X, W, B?, Sum?) -> Y                      (domain DOMAIN)
    Inner product: Y[n, m] = sum_k X[n, k] * W[m, k] + B[m]; X of rank > 2 is flattened from axis 1.
    W is [M, K] (output features first).
    axis: INT (default 1): X is read as [prod(X.shape[:axis]), prod(X.shape[axis:])] and Y has shape
        X.shape[:axis] + [M]: 1 is Gemm after a Flatten, rank(X) - 1 a MatMul over the last axis
        (its output channels then lie on the last axis). Same post_ops, INT8 and precision attributes as Conv.

Affine(X, Scale, Shift) -> Y                    (domain DOMAIN)
    Y = post_ops(X * Scale[c] + Shift[c]) per channel (axis 1): a BatchNorm no conv absorbed, with its
    activations. Scale, Shift: float [C]. post_ops as for Conv (no "sum"). INT8 when x_scale is set:
        x_scale, x_zero_point: the encoding of X (uint8/int8); y_type, y_scale, y_zero_point: as for Conv.

Binary(A, B) -> Y                               (domain DOMAIN)
    An INT8 element-wise Add or Mul: Y = saturate(round(((a_scale * A) alg (b_scale * B)) / y_scale)).
    alg: STRING "add" or "mul". A: uint8/int8 (zero point 0) of the output's shape; B: uint8/int8 with
    b_scale, or float (no b_scale), broadcasting to A (the squeeze-excite gate [N, C, 1, 1]).
    a_scale: FLOAT; b_scale: FLOAT (absent for float B); y_type: INT; y_scale: FLOAT for int8 Y;
    clip: FLOATS [lo, hi] for a float Y that the QDQ model saturated.

Gelu(X) -> Y                                    (domain DOMAIN)
    Y = 0.5 * X * (1 + erf(X / sqrt(2))), the exact GELU that exporters spell out in Div/Erf/Add/Mul (ONNX
    has Gelu only from opset 20); it fuses into the Conv/Dense before it as the post-op "gelu".
    approximate: STRING "tanh" for 0.5 * X * (1 + tanh(sqrt(2 / pi) * (X + 0.044715 * X^3))) (post-op
    "gelu_tanh"), as ONNX's Gelu-20 spells it; absent for the exact one.

Mean(X) -> Y                                    (domain DOMAIN)
    The mean of INT8 X over `axes` (INTS; keepdims INT, default 1): x_scale * (mean(q) - x_zero_point),
    read without a dequantized copy (a global pool or squeeze-excite mean). Y is float, or uint8/int8
    when y_type/y_scale/y_zero_point are set: the mean rounded once onto that grid, as a QuantizeLinear
    after the float mean would.

AveragePool(X) -> Y                             (domain DOMAIN)
    ONNX's AveragePool (its attributes as they were) of INT8 X: x_scale * (average(q) - x_zero_point),
    x_scale: FLOAT, x_zero_point: INT; read without a dequantized copy (DenseNet's transitions, pooled
    Inception branches). Y is float, or rounded once onto y_type/y_scale/y_zero_point as for Mean.

Requantize(X) -> Y                              (domain DOMAIN)
    x_scale, y_scale: FLOAT; y_type: INT (UINT8/INT8); x_zero_point, y_zero_point: INT (default 0).
    Y = saturate(round((X - x_zero_point) * x_scale / y_scale) + y_zero_point).

Borders between FP32 and INT8 use the standard QuantizeLinear / DequantizeLinear with a scalar scale
and zero point, exactly as the QDQ model gave them. Data-movement ops (MaxPool, AveragePool,
GlobalAveragePool, Flatten, Reshape, Transpose, Concat, Split, Slice) keep the ONNX op types and run
on int8 data as they are; their dtype flows from their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

# OPTIMIZED_KEY marks optimised/converted models so the runtime does not optimise them again; every
# int8kit.* metadata key is defined in int8kit.metadata.
from int8kit.metadata import OPTIMIZED_KEY  # noqa: F401

DOMAIN = "int8kit"
DOMAIN_VERSION = 1


FLOAT, UINT8, INT8 = 1, 2, 3

# The fused compute ops of this domain (what QDQ weights, INT8 kernels and bf16 apply to).
FUSED_COMPUTE_OPS = ("Conv", "Dense")

# Post-op spellings. Parameters follow a colon: "clip:0:6", "hardsigmoid:0.2:0.5", "leakyrelu:0.01",
# "swish:1.0" (x * sigmoid(alpha * x): SiLU for alpha 1).
POST_OPS = (
    "sum",
    "relu",
    "clip",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "leakyrelu",
    "tanh",
    "swish",
    "gelu",
    "gelu_tanh",
    "elu",
    "softplus",
    "mish",
    "linear",
    "fq",
)
# "linear:alpha:beta" is alpha * x + beta: a constant Add the file rounds the conv output before (see
# ir.fuse_bias_add), which a fold into B would skip.
# "fq:scale:zero_point:qmin:qmax" rounds the running value onto an INT8 grid and back, as a Q -> DQ pair
# does: where a fusion removes a tensor the QDQ model quantizes (a conv output before its ReLU or its
# residual Add), the fused chain still rounds there, so the INT8 model computes what the file says.


@dataclass(frozen=True)
class PostOp:
    """One step of a fused post-op chain."""

    kind: str
    params: tuple[float, ...] = ()

    def encode(self) -> str:
        return ":".join([self.kind, *(repr(float(p)) for p in self.params)])

    @staticmethod
    def decode(text: str) -> PostOp:
        kind, *params = text.split(":")
        if kind not in POST_OPS:
            raise ValueError(f"unknown post-op {text!r}; known: {', '.join(POST_OPS)}")
        return PostOp(kind, tuple(float(p) for p in params))


def decode_post_ops(texts: list[str] | tuple[str, ...]) -> list[PostOp]:
    return [PostOp.decode(t) for t in texts]
