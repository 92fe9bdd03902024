"""The one op table: what the quantizer, the converter, the runtime and QAT each need to know per ONNX op.

Every stage used to keep its own tuples of op types (compute ops, data-movement ops, value-preserving ops,
sign-preserving ops, activations with their defaults), and they drifted apart. Each row here says, for
one ONNX op type (default domain):

- role: "compute" (has weights: Conv, Gemm, MatMul), "data_movement" (moves or selects values),
  "binary" (element-wise of two computed tensors), "activation" (fuses as a post-op), "averaging",
  "normalization", "shape" (reads only the input's shape), or "other";
- grid: how its output's values relate to its input's: "same" (a subset of the input's values: one
  encoding fits both), "average" (within the input's range, but new values), "own" (anything);
- sign: "nonnegative" (>= 0 whatever the input; Clip only with a minimum >= 0), "preserving" (>= 0 when
  its data inputs are), "any";
- bounded: the op itself bounds its output to a fixed interval whatever its input (Sigmoid, Tanh, HardSigmoid,
  Softmax; Clip only with a constant maximum), so calibration has no outliers there to clip;
- zero_point: the converter's INT8 form executes a zero point on this op's data (oneDNN convolution and
  inner-product sources, pooling, moves); binary ops and Pad have none, so a zero point there costs INT8;
- qdq: what int8kit's quantizer puts Q/DQ on: "inputs" (compute ops: activations in, weights),
  "inputs_and_output" (Add, Concat, pools), or None;
- int8: whether the converter has an INT8 form for it (the vocabulary of --ops-to-quantize);
- post_op: the int8kit post-op kind it fuses into a Conv/Dense as (see int8kit.ops), with that kind's
  oneDNN eltwise algorithm and parameter defaults (the ONNX attribute defaults) in POST_OP_KERNELS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpSpec:
    op_type: str
    role: str
    grid: str = "own"
    sign: str = "any"
    qdq: str | None = None
    int8: bool = False
    post_op: str | None = None
    many_inputs: bool = False  # every input is data (Concat, Add, Mul), not input 0 alone
    bounded: bool = False
    zero_point: bool = False


def _rows(*specs: OpSpec) -> dict[str, OpSpec]:
    return {s.op_type: s for s in specs}


OPS: dict[str, OpSpec] = _rows(
    # compute: weights quantized per output channel; fused into int8kit.Conv / int8kit.Dense
    OpSpec("Conv", "compute", qdq="inputs", int8=True, zero_point=True),
    OpSpec("Gemm", "compute", qdq="inputs", int8=True, zero_point=True),
    OpSpec("MatMul", "compute", qdq="inputs", int8=True, zero_point=True),
    # data movement: INT8 data passes through on its input's grid
    OpSpec("MaxPool", "data_movement", "same", "preserving", "inputs_and_output", True, zero_point=True),
    OpSpec("GlobalMaxPool", "data_movement", "same", "preserving"),
    OpSpec("AveragePool", "data_movement", "average", "preserving", "inputs_and_output", True),
    OpSpec("GlobalAveragePool", "data_movement", "average", "preserving", "inputs_and_output", True, zero_point=True),
    OpSpec("Concat", "data_movement", "same", "preserving", "inputs_and_output", True, many_inputs=True),
    OpSpec("Reshape", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("Flatten", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("Squeeze", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("Unsqueeze", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("Transpose", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("DepthToSpace", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("SpaceToDepth", "data_movement", "same", "preserving", int8=True, zero_point=True),
    OpSpec("Split", "data_movement", "same", "preserving", int8=True),
    OpSpec("Slice", "data_movement", "same", "preserving", int8=True),
    OpSpec("Pad", "data_movement", "same", int8=True),  # INT8 only when it fills 0 (convert.place_int8)
    OpSpec("Identity", "data_movement", "same", "preserving"),
    OpSpec("Resize", "data_movement", "own", "preserving"),
    OpSpec("Upsample", "data_movement", "own", "preserving"),
    OpSpec("ReduceMean", "averaging", "average"),
    # binary ops of two computed tensors (residual sums, squeeze-excite products)
    # >= 0 when both operands are (a squeeze-excite gate in [0, 1] times a ReLU output; two ReLU branches)
    OpSpec("Add", "binary", sign="preserving", qdq="inputs_and_output", int8=True, many_inputs=True),
    OpSpec("Mul", "binary", sign="preserving", int8=True, many_inputs=True),
    OpSpec("BatchNormalization", "normalization", int8=True),  # a standalone one is an int8kit.Affine
    # activations: fused as post-ops of the op before them
    OpSpec("Relu", "activation", sign="nonnegative", post_op="relu"),
    OpSpec("Clip", "activation", sign="nonnegative", post_op="clip", bounded=True),  # see scheme.clip_*
    OpSpec("HardSwish", "activation", post_op="hardswish"),
    OpSpec("HardSigmoid", "activation", sign="nonnegative", post_op="hardsigmoid", bounded=True),
    OpSpec("Sigmoid", "activation", sign="nonnegative", post_op="sigmoid", bounded=True),
    OpSpec("LeakyRelu", "activation", post_op="leakyrelu"),
    OpSpec("Tanh", "activation", post_op="tanh", bounded=True),
    OpSpec("Elu", "activation", post_op="elu"),
    OpSpec("Softplus", "activation", sign="nonnegative", post_op="softplus"),
    OpSpec("Mish", "activation", post_op="mish"),
    OpSpec("Softmax", "other", sign="nonnegative", bounded=True),
    OpSpec("LogSoftmax", "other"),  # <= 0 and unbounded below: a head's output, left FP32
    # shape readers: read only their input's shape, so INT8 data serves them as it is
    OpSpec("Shape", "shape"),
    OpSpec("Size", "shape"),
)

# Post-op kind -> (oneDNN eltwise algorithm name in int8kit.runtime.dnnl, parameter defaults). The
# defaults are the ONNX attribute defaults (LeakyRelu alpha 0.01, HardSigmoid alpha 0.2 / beta 0.5;
# HardSwish is HardSigmoid(1/6, 0.5) times x); "swish" is x * sigmoid(alpha * x), SiLU at alpha 1.
POST_OP_KERNELS: dict[str, tuple[str, tuple[float, ...]]] = {
    "relu": ("ELTWISE_RELU", ()),
    "leakyrelu": ("ELTWISE_RELU", (0.01,)),
    "clip": ("ELTWISE_CLIP_V2", (0.0, 6.0)),
    "hardswish": ("ELTWISE_HARDSWISH", (1.0 / 6.0, 0.5)),
    "hardsigmoid": ("ELTWISE_HARDSIGMOID", (0.2, 0.5)),
    "sigmoid": ("ELTWISE_LOGISTIC", ()),
    "tanh": ("ELTWISE_TANH", ()),
    "swish": ("ELTWISE_SWISH", (1.0,)),
    "gelu": ("ELTWISE_GELU_ERF", ()),  # int8kit.Gelu, the exact (erf) GELU
    "gelu_tanh": ("ELTWISE_GELU_TANH", ()),  # int8kit.Gelu approximate="tanh"
    "elu": ("ELTWISE_ELU", (1.0,)),
    "softplus": ("ELTWISE_SOFT_RELU", (1.0,)),  # oneDNN's soft_relu is log(1 + exp(alpha x)) / alpha
    "mish": ("ELTWISE_MISH", ()),
    "linear": ("ELTWISE_LINEAR", (1.0, 0.0)),  # alpha * x + beta: a scalar Add after a rounded output
}


def spec(op_type: str) -> OpSpec | None:
    return OPS.get(op_type)


def op_types(**where) -> tuple[str, ...]:
    """The op types whose rows match every field given, e.g. op_types(role="data_movement", int8=True)."""
    return tuple(s.op_type for s in OPS.values() if all(getattr(s, k) == v for k, v in where.items()))


def activation_defaults(kind: str) -> tuple[float, ...]:
    return POST_OP_KERNELS[kind][1]
