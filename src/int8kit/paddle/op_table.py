"""Paddle op -> ONNX nodes, one small function per op type, looked up in OPS.

Each function reads its op's inputs from the builder (computed values, parameters or int8 weights) and
binds its outputs. Paddle attributes with no ONNX equivalent in an image classifier (NHWC layouts, adaptive
pools to sizes other than 1, tensor-valued shapes) are refused naming the op, not approximated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from int8kit.errors import UnsupportedOpError
from int8kit.paddle.builder import Builder
from int8kit.paddle.fake_quant import QDQ_OP
from int8kit.paddle.program import Op

Translate = Callable[[Builder, Op], None]
OPS: dict[str, Translate] = {}


def register(*names: str) -> Callable[[Translate], Translate]:
    def wrap(fn: Translate) -> Translate:
        for n in names:
            OPS[n] = fn
        return fn

    return wrap


def refuse(op: Op, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{op.describe()}: {why}")


def _nchw(op: Op) -> None:
    layout = op.attrs.get("data_format", op.attrs.get("data_layout", "NCHW"))
    if layout not in ("NCHW", "AnyLayout"):
        raise refuse(op, f"data layout {layout} (only NCHW is supported)")


def _pads(op: Op, rank: int = 2) -> list[int]:
    """Paddle paddings ([h, w] or [top, bottom, left, right]) as ONNX pads [begins..., ends...]."""
    p = [int(v) for v in op.attrs.get("paddings", [0] * rank)]
    if op.attrs.get("padding_algorithm", "EXPLICIT") == "VALID":
        return [0] * (2 * rank)
    if len(p) == rank:
        return p + p
    if len(p) == 2 * rank:
        return p[0::2] + p[1::2]
    raise refuse(op, f"paddings {p}")


def _auto_pad(op: Op) -> dict:
    if op.attrs.get("padding_algorithm", "EXPLICIT") == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": _pads(op)}


@register("feed", "fetch")
def _io(b: Builder, op: Op) -> None:  # handled by the reader (graph inputs and outputs)
    pass


@register(QDQ_OP)
def _qdq(b: Builder, op: Op) -> None:
    scale = b.const(np.array(op.attrs["scale"], np.float32), f"{op.output('Out')}_scale")
    zp = b.const(np.array(0, np.int8), f"{op.output('Out')}_zero_point")
    q = b.add("QuantizeLinear", [b.input(op, "X"), scale, zp])[0]
    b.output(op, "Out", b.add("DequantizeLinear", [q, scale, zp])[0])


@register("conv2d", "depthwise_conv2d")
def _conv(b: Builder, op: Op) -> None:
    _nchw(op)
    w = b.input(op, "Filter")
    inputs = [b.input(op, "Input"), w]
    if op.input("Bias"):
        inputs.append(b.input(op, "Bias"))
    attrs = {
        "strides": [int(s) for s in op.attrs.get("strides", [1, 1])],
        "dilations": [int(d) for d in op.attrs.get("dilations", [1, 1])],
        "group": int(op.attrs.get("groups", 1) or 1),
        **_auto_pad(op),
    }
    b.output(op, "Output", b.add("Conv", inputs, attrs)[0])


@register("batch_norm")
def _batch_norm(b: Builder, op: Op) -> None:
    _nchw(op)
    inputs = [b.input(op, s) for s in ("X", "Scale", "Bias", "Mean", "Variance")]
    attrs = {"epsilon": float(op.attrs.get("epsilon", 1e-5))}
    b.output(op, "Y", b.add("BatchNormalization", inputs, attrs)[0])


def _unary(onnx_op: str, **attrs) -> Translate:
    def fn(b: Builder, op: Op) -> None:
        b.output(op, "Out", b.add(onnx_op, [b.input(op, "X")], attrs)[0])

    return fn


for _paddle, _onnx in (
    ("relu", "Relu"),
    ("sigmoid", "Sigmoid"),
    ("tanh", "Tanh"),
    ("exp", "Exp"),
    ("abs", "Abs"),
    ("sqrt", "Sqrt"),
):
    OPS[_paddle] = _unary(_onnx)


@register("assign")
def _assign(b: Builder, op: Op) -> None:
    b.output(op, "Out", b.input(op, "X"))


def _clip(b: Builder, x, lo: float, hi: float) -> object:
    return b.add(
        "Clip", [x, b.const(np.array(lo, np.float32), "clip_min"), b.const(np.array(hi, np.float32), "clip_max")]
    )[0]


@register("relu6")
def _relu6(b: Builder, op: Op) -> None:
    b.output(op, "Out", _clip(b, b.input(op, "X"), 0.0, float(op.attrs.get("threshold", 6.0))))


@register("clip")
def _clip_op(b: Builder, op: Op) -> None:
    if op.input("Min") or op.input("Max"):
        raise refuse(op, "tensor-valued Min/Max")
    b.output(op, "Out", _clip(b, b.input(op, "X"), float(op.attrs["min"]), float(op.attrs["max"])))


@register("leaky_relu")
def _leaky_relu(b: Builder, op: Op) -> None:
    b.output(op, "Out", b.add("LeakyRelu", [b.input(op, "X")], {"alpha": float(op.attrs.get("alpha", 0.02))})[0])


@register("hard_swish")
def _hard_swish(b: Builder, op: Op) -> None:
    t, s, o = (float(op.attrs.get(k, d)) for k, d in (("threshold", 6.0), ("scale", 6.0), ("offset", 3.0)))
    if (t, s, o) != (6.0, 6.0, 3.0):
        raise refuse(op, f"hard_swish with threshold/scale/offset {t}/{s}/{o} (only 6/6/3 is HardSwish)")
    b.output(op, "Out", b.add("HardSwish", [b.input(op, "X")])[0])


@register("hard_sigmoid")
def _hard_sigmoid(b: Builder, op: Op) -> None:
    attrs = {"alpha": float(op.attrs.get("slope", 0.2)), "beta": float(op.attrs.get("offset", 0.5))}
    b.output(op, "Out", b.add("HardSigmoid", [b.input(op, "X")], attrs)[0])


@register("swish", "silu")
def _swish(b: Builder, op: Op) -> None:
    x = b.input(op, "X")
    beta = float(op.attrs.get("beta", 1.0))
    gate_in = x if beta == 1.0 else b.add("Mul", [x, b.const(np.array(beta, np.float32), "swish_beta")])[0]
    b.output(op, "Out", b.add("Mul", [x, b.add("Sigmoid", [gate_in])[0]])[0])


@register("pool2d")
def _pool2d(b: Builder, op: Op) -> None:
    _nchw(op)
    kind = op.attrs.get("pooling_type", "max")
    if kind not in ("max", "avg"):
        raise refuse(op, f"pooling type {kind!r}")
    ksize = [int(k) for k in op.attrs.get("ksize", [1, 1])]
    x = b.input(op, "X")
    if op.attrs.get("global_pooling") or (op.attrs.get("adaptive") and ksize == [1, 1]):
        b.output(op, "Out", b.add("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", [x])[0])
        return
    if op.attrs.get("adaptive"):
        raise refuse(op, f"adaptive pooling to {ksize} (only to 1x1)")
    attrs = {
        "kernel_shape": ksize,
        "strides": [int(s) for s in op.attrs.get("strides", [1, 1])],
        "ceil_mode": int(bool(op.attrs.get("ceil_mode", False))),
        **_auto_pad(op),
    }
    if kind == "avg":
        attrs["count_include_pad"] = 0 if op.attrs.get("exclusive", True) else 1
    b.output(op, "Out", b.add("MaxPool" if kind == "max" else "AveragePool", [x], attrs)[0])


def _aligned_y(b: Builder, op: Op) -> object:
    """Y broadcast against X from Paddle's `axis` (Y's dims line up with X's starting at axis)."""
    x_rank, y_rank = b.rank(op.input("X")), b.rank(op.input("Y"))
    axis = int(op.attrs.get("axis", -1))
    y = b.input(op, "Y")
    if axis == -1 or x_rank is None or y_rank is None or axis + y_rank == x_rank:
        return y
    trailing = x_rank - axis - y_rank
    if trailing < 0:
        raise refuse(op, f"axis {axis} does not fit ranks {x_rank} and {y_rank}")
    const = b.param(op, "Y")
    if const is not None:
        return b.const(const.reshape(const.shape + (1,) * trailing), f"{op.input('Y')}_aligned")
    axes = b.const(np.arange(y_rank, y_rank + trailing, dtype=np.int64), "unsqueeze_axes")
    return b.add("Unsqueeze", [y, axes])[0]


def _binary(onnx_op: str) -> Translate:
    def fn(b: Builder, op: Op) -> None:
        b.output(op, "Out", b.add(onnx_op, [b.input(op, "X"), _aligned_y(b, op)])[0])

    return fn


for _paddle, _onnx in (
    ("elementwise_add", "Add"),
    ("elementwise_sub", "Sub"),
    ("elementwise_mul", "Mul"),
    ("elementwise_div", "Div"),
    ("elementwise_max", "Max"),
    ("elementwise_min", "Min"),
):
    OPS[_paddle] = _binary(_onnx)


def _flatten_to(b: Builder, x, axis: int) -> object:
    return b.add("Flatten", [x], {"axis": axis})[0]


@register("mul")
def _mul(b: Builder, op: Op) -> None:
    x = b.input(op, "X")
    if int(op.attrs.get("y_num_col_dims", 1)) != 1 or b.rank(op.input("Y")) != 2:
        raise refuse(op, "mul with a Y of rank other than 2")
    x_dims = int(op.attrs.get("x_num_col_dims", 1))
    if b.rank(op.input("X")) != 2 or x_dims != 1:
        x = _flatten_to(b, x, x_dims)
    b.output(op, "Out", b.add("MatMul", [x, b.input(op, "Y")])[0])


def _transposed(b: Builder, op: Op, slot: str) -> object:
    name = op.input(slot)
    rank = b.rank(name)
    if rank is None or rank < 2:
        raise refuse(op, f"transposed {slot} of unknown rank")
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    if name in b.params and name not in b.qweights and name not in b.values:
        return b.const(np.transpose(b.params[name], perm), f"{name}_transposed")
    return b.add("Transpose", [b.input(op, slot)], {"perm": perm})[0]


@register("matmul", "matmul_v2")
def _matmul(b: Builder, op: Op) -> None:
    tx = op.attrs.get("trans_x", op.attrs.get("transpose_X", False))
    ty = op.attrs.get("trans_y", op.attrs.get("transpose_Y", False))
    x = _transposed(b, op, "X") if tx else b.input(op, "X")
    y = _transposed(b, op, "Y") if ty else b.input(op, "Y")
    out = b.add("MatMul", [x, y])[0]
    alpha = float(op.attrs.get("alpha", 1.0))
    if alpha != 1.0:
        out = b.add("Mul", [out, b.const(np.array(alpha, np.float32), "matmul_alpha")])[0]
    b.output(op, "Out", out)


@register("fc")
def _fc(b: Builder, op: Op) -> None:
    x = b.input(op, "Input")
    dims = int(op.attrs.get("in_num_col_dims", 1))
    if b.rank(op.input("Input")) != 2 or dims != 1:
        x = _flatten_to(b, x, dims)
    out = b.add("MatMul", [x, b.input(op, "W")])[0]
    if op.input("Bias"):
        bias = b.param(op, "Bias")
        bias_v = b.const(bias.reshape(-1), op.input("Bias")) if bias is not None else b.input(op, "Bias")
        out = b.add("Add", [out, bias_v])[0]
    act = op.attrs.get("activation_type", "")
    if act == "relu":
        out = b.add("Relu", [out])[0]
    elif act:
        raise refuse(op, f"fc activation {act!r}")
    b.output(op, "Out", out)


@register("softmax")
def _softmax(b: Builder, op: Op) -> None:
    b.output(op, "Out", b.add("Softmax", [b.input(op, "X")], {"axis": int(op.attrs.get("axis", -1))})[0])


@register("reshape2", "reshape")
def _reshape(b: Builder, op: Op) -> None:
    if op.input("Shape") or op.inputs.get("ShapeTensor"):
        raise refuse(op, "reshape to a computed (tensor) shape")
    shape = b.const(np.array(op.attrs["shape"], np.int64), f"{op.output('Out')}_shape")
    b.output(op, "Out", b.add("Reshape", [b.input(op, "X"), shape])[0])


@register("transpose2", "transpose")
def _transpose(b: Builder, op: Op) -> None:
    perm = [int(a) for a in op.attrs["axis"]]
    b.output(op, "Out", b.add("Transpose", [b.input(op, "X")], {"perm": perm})[0])


@register("flatten_contiguous_range")
def _flatten_range(b: Builder, op: Op) -> None:
    rank = b.rank(op.input("X"))
    if rank is None:
        raise refuse(op, "flatten of an input of unknown rank")
    start = int(op.attrs.get("start_axis", 1)) % rank
    stop = int(op.attrs.get("stop_axis", -1)) % rank
    x = b.input(op, "X")
    if stop == rank - 1 and start == 1:
        b.output(op, "Out", _flatten_to(b, x, 1))
        return
    tail = list(b.shape(op.input("X"))[stop + 1 :])
    if any(d < 0 for d in tail):
        raise refuse(op, "flatten before dimensions of unknown size")
    shape = b.const(np.array([0] * start + [-1] + tail, np.int64), f"{op.output('Out')}_shape")
    b.output(op, "Out", b.add("Reshape", [x, shape])[0])


@register("flatten2", "flatten")
def _flatten(b: Builder, op: Op) -> None:
    b.output(op, "Out", _flatten_to(b, b.input(op, "X"), int(op.attrs.get("axis", 1))))


@register("concat")
def _concat(b: Builder, op: Op) -> None:
    if op.input("AxisTensor"):
        raise refuse(op, "concat along a computed (tensor) axis")
    values = [b.value(n) for n in op.inputs["X"]]
    b.output(op, "Out", b.add("Concat", values, {"axis": int(op.attrs.get("axis", 0))})[0])


@register("scale")
def _scale(b: Builder, op: Op) -> None:
    if op.input("ScaleTensor"):
        raise refuse(op, "scale by a computed (tensor) factor")
    x = b.input(op, "X")
    scale, bias = float(op.attrs.get("scale", 1.0)), float(op.attrs.get("bias", 0.0))
    after = op.attrs.get("bias_after_scale", True)
    if bias != 0.0 and not after:
        x = b.add("Add", [x, b.const(np.array(bias, np.float32), "scale_bias")])[0]
    if scale != 1.0:
        x = b.add("Mul", [x, b.const(np.array(scale, np.float32), "scale_factor")])[0]
    if bias != 0.0 and after:
        x = b.add("Add", [x, b.const(np.array(bias, np.float32), "scale_bias")])[0]
    b.output(op, "Out", x)


@register("dropout")
def _dropout(b: Builder, op: Op) -> None:
    x = b.input(op, "X")
    if op.attrs.get("dropout_implementation", "downgrade_in_infer") == "downgrade_in_infer":
        keep = 1.0 - float(op.attrs.get("dropout_prob", 0.5))
        x = b.add("Mul", [x, b.const(np.array(keep, np.float32), "dropout_keep")])[0]
    b.output(op, "Out", x)


@register("squeeze2", "unsqueeze2")
def _squeeze(b: Builder, op: Op) -> None:
    if op.input("AxesTensor") or op.inputs.get("AxesTensorList"):
        raise refuse(op, "computed (tensor) axes")
    axes = b.const(np.array(op.attrs.get("axes", []), np.int64), f"{op.output('Out')}_axes")
    onnx_op = "Squeeze" if op.type == "squeeze2" else "Unsqueeze"
    inputs = [b.input(op, "X"), axes] if op.attrs.get("axes") or onnx_op == "Unsqueeze" else [b.input(op, "X")]
    b.output(op, "Out", b.add(onnx_op, inputs)[0])
