"""Lowerings of element-wise ops, softmax, pooling and the quantize/dequantize/requantize borders.

These ops run in whatever layout their input already has, so data never changes layout between
two convolutions just because an activation or a pooling sits between them.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl, precision
from int8kit.runtime.compile import (
    DNNL_TO_NUMPY,
    ONNX_TO_DNNL,
    Builder,
    Const,
    Tensor,
    layout_variants,
    with_layout_of,
)
from int8kit.runtime.lowering_layout import broadcast_to, constant_padded, permuted_copy
from int8kit.runtime.registry import lowering


def _eltwise(
    b: Builder, node: ir.Node, alg: int, alpha: float = 0.0, beta: float = 0.0, then: tuple[tuple, ...] = ()
) -> None:
    """One eltwise primitive; `then` holds (alg, alpha, beta) steps run after it in place (oneDNN 3.2 has
    only reference kernels for eltwise post-ops)."""
    src = b.input(node, 0)
    pd = b.first_fast(
        node.name,
        [lambda md=md: dnnl.eltwise_pd(alg, md, md, alpha, beta, dnnl.Attr()) for md in layout_variants(src.md)],
    )
    md = pd.md(dnnl.QUERY_SRC_MD)
    moved = md != src.md
    src = b.as_md(src, md, node.name)
    in_place = (moved or b.is_last_use(node, 0)) and not src.storage.external
    dst = b.view(src, src.md) if in_place else b.new_tensor(src.md)
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, dst)], node.name)
    for step in then:
        b.add_step(
            dnnl.eltwise_pd(step[0], dst.md, dst.md, step[1], step[2], dnnl.Attr()),
            [(dnnl.ARG_SRC, dst), (dnnl.ARG_DST, dst)],
            node.name,
        )
    b.set_output(node, dst)


@lowering("Relu")
def relu(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_RELU)


@lowering("LeakyRelu")
def leaky_relu(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_RELU, node.attributes.get_float("alpha", 0.01))


@lowering("Sigmoid")
def sigmoid(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_LOGISTIC)


@lowering("Tanh")
def tanh(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_TANH)


@lowering("HardSwish")
def hardswish(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_HARDSWISH, 1.0 / 6.0, 0.5)


@lowering("HardSigmoid")
def hardsigmoid(b: Builder, node: ir.Node) -> None:
    _eltwise(
        b,
        node,
        dnnl.ELTWISE_HARDSIGMOID,
        node.attributes.get_float("alpha", 0.2),
        node.attributes.get_float("beta", 0.5),
    )


@lowering("Gelu", domain=ops.DOMAIN)
def gelu(b: Builder, node: ir.Node) -> None:
    tanh = node.attributes.get_string("approximate", "none") == "tanh"
    _eltwise(b, node, dnnl.ELTWISE_GELU_TANH if tanh else dnnl.ELTWISE_GELU_ERF)


@lowering("Elu")
def elu(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_ELU, node.attributes.get_float("alpha", 1.0))


@lowering("Selu")
def selu(b: Builder, node: ir.Node) -> None:
    """gamma * elu_alpha(x), with the ONNX defaults (the self-normalising constants)."""
    alpha = node.attributes.get_float("alpha", 1.67326319217681884765625)
    gamma = node.attributes.get_float("gamma", 1.05070102214813232421875)
    _eltwise(b, node, dnnl.ELTWISE_ELU, alpha, then=((dnnl.ELTWISE_LINEAR, gamma, 0.0),))


@lowering("Celu")
def celu(b: Builder, node: ir.Node) -> None:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) = alpha * elu_1(x / alpha)."""
    alpha = node.attributes.get_float("alpha", 1.0)
    _eltwise(
        b,
        node,
        dnnl.ELTWISE_LINEAR,
        1.0 / alpha,
        then=((dnnl.ELTWISE_ELU, 1.0, 0.0), (dnnl.ELTWISE_LINEAR, alpha, 0.0)),
    )


@lowering("PRelu")
def prelu(b: Builder, node: ir.Node) -> None:
    """PRelu with a constant slope: a scalar one is a leaky ReLU, a per-channel one oneDNN's prelu."""
    slope = b.constant_array(node, 1)
    if slope is None:
        raise UnsupportedOpError(f"node {node.name!r}: PRelu needs a constant slope")
    if slope.size == 1:
        _eltwise(b, node, dnnl.ELTWISE_RELU, float(slope.reshape(-1)[0]))
        return
    src = b.input(node, 0)
    full = slope.astype(np.float32).reshape((1,) * (len(src.dims) - slope.ndim) + slope.shape)
    if len(full.shape) != len(src.dims) or tuple(np.broadcast_shapes(full.shape, src.dims)) != tuple(src.dims):
        raise UnsupportedOpError(
            f"node {node.name!r}: PRelu slope {list(slope.shape)} does not broadcast to {src.dims}"
        )
    weights = b.const(full)
    pd = b.first_fast(
        node.name,
        [
            lambda md=md: dnnl.prelu_pd(md, with_layout_of(full.shape, dnnl.DT_F32, md), md, dnnl.Attr())
            for md in layout_variants(src.md)
        ],
    )
    src = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
    if weights.memory.md != pd.md(dnnl.QUERY_WEIGHTS_MD):
        weights = b.const(full, full.shape, pd.md(dnnl.QUERY_WEIGHTS_MD))
    dst = b.new_tensor(src.md)
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_WEIGHTS, weights), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst)


@lowering("Softplus")
def softplus(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_SOFT_RELU, 1.0)


@lowering("Mish")
def mish(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, dnnl.ELTWISE_MISH)


_UNARY = {"Sqrt": dnnl.ELTWISE_SQRT, "Exp": dnnl.ELTWISE_EXP, "Log": dnnl.ELTWISE_LOG, "Abs": dnnl.ELTWISE_ABS}


@lowering(*_UNARY)
def unary(b: Builder, node: ir.Node) -> None:
    _eltwise(b, node, _UNARY[node.op_type])


# Erf(x) from oneDNN's exact GELU, gelu_erf(t) = t * (1 + erf(t / sqrt 2)) / 2 at t = sqrt(2) x:
# erf(x) = 2 gelu_erf(t) / t - 1. x is clipped to +-ERF_FLAT first (erf is +-1 in f32 beyond 4; huge
# x would overflow t), and TINY keeps t off 0 (erf(0) = 0 comes out exactly) while moving t by less
# than any float x it matters for.
_ERF_FLAT = 6.0
_ERF_TINY = 1e-30


@lowering("Erf")
def erf(b: Builder, node: ir.Node) -> None:
    """Standalone Erf (a GELU whose inside a QDQ file rounds, so it cannot fuse): oneDNN has no erf
    kernel, so it is its exact GELU divided by its argument (four primitives, all optimised)."""
    src = b.input(node, 0)
    md = src.md
    t = b.new_tensor(md)
    b.add_step(
        dnnl.eltwise_pd(dnnl.ELTWISE_CLIP_V2, md, md, -_ERF_FLAT, _ERF_FLAT, dnnl.Attr()),
        [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, t)],
        f"{node.name} (clipped)",
    )
    b.add_step(
        dnnl.eltwise_pd(dnnl.ELTWISE_LINEAR, md, md, math.sqrt(2.0), _ERF_TINY, dnnl.Attr()),
        [(dnnl.ARG_SRC, t), (dnnl.ARG_DST, t)],
        f"{node.name} (sqrt2 x)",
    )
    g = b.new_tensor(md)
    b.add_step(
        dnnl.eltwise_pd(dnnl.ELTWISE_GELU_ERF, md, md, 0.0, 0.0, dnnl.Attr()),
        [(dnnl.ARG_SRC, t), (dnnl.ARG_DST, g)],
        f"{node.name} (gelu)",
    )
    post_ops = dnnl.PostOps()
    post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, 2.0, -1.0)
    dst = b.view(g, md)  # in place over the GELU
    b.add_step(
        dnnl.binary_pd(dnnl.BINARY_DIV, md, md, md, dnnl.Attr(None, post_ops)),
        [(dnnl.ARG_SRC, g), (dnnl.ARG_SRC_1, t), (dnnl.ARG_DST, dst)],
        node.name,
    )
    b.set_output(node, dst)


@lowering("Sign")
def sign(b: Builder, node: ir.Node) -> None:
    """sign(x) = (x > 0) - (x < 0), exact for every float (oneDNN has no sign eltwise, and a clip of x times
    a large number misses denormals). torch writes LPPool2d's |x|^p with it."""
    src = b.input(node, 0)
    zero = b.const(np.zeros((1,) * len(src.dims), np.float32))
    label = f"{node.name} (x < 0)"
    pd = b.first_fast(  # a blocked source has only ref:any against a scalar
        label,
        [
            lambda md=md: dnnl.binary_pd(dnnl.BINARY_LT, md, zero.memory.md, md, dnnl.Attr())
            for md in layout_variants(src.md)
        ],
    )
    md = pd.md(dnnl.QUERY_SRC_MD, 0)
    src = b.as_md(src, md, label)
    negative = b.new_tensor(md)
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_SRC_1, zero), (dnnl.ARG_DST, negative)], label)
    post_ops = dnnl.PostOps()
    post_ops.append_binary(dnnl.BINARY_SUB, md)
    dst = b.new_tensor(md)
    b.add_step(
        dnnl.binary_pd(dnnl.BINARY_GT, md, zero.memory.md, md, dnnl.Attr(None, post_ops)),
        [(dnnl.ARG_SRC, src), (dnnl.ARG_SRC_1, zero), (dnnl.ARG_DST, dst), (dnnl.post_op_arg(0), negative)],
        node.name,
    )
    b.set_output(node, dst)


@lowering("Pow")
def power(b: Builder, node: ir.Node) -> None:
    """x ** p for a constant scalar p (LayerNorm spelled out squares; RMS norms take roots)."""
    exponent = b.constant_array(node, 1)
    if exponent is None or exponent.size != 1:
        raise UnsupportedOpError(f"node {node.name!r}: Pow needs a constant scalar exponent")
    _eltwise(b, node, dnnl.ELTWISE_POW, 1.0, float(exponent.reshape(-1)[0]))


@lowering("Clip")
def clip(b: Builder, node: ir.Node) -> None:
    lo = b.constant_array(node, 1)
    hi = b.constant_array(node, 2)
    for i, bound in ((1, lo), (2, hi)):
        if bound is None and i < len(node.inputs) and node.inputs[i] is not None:
            raise UnsupportedOpError(f"node {node.name!r}: Clip bounds must be constants")
    lo_v = float(lo) if lo is not None else -math.inf
    hi_v = float(hi) if hi is not None else math.inf
    _eltwise(b, node, dnnl.ELTWISE_CLIP_V2, max(lo_v, -3.4e38), min(hi_v, 3.4e38))


_BINARY = {
    "Add": dnnl.BINARY_ADD,
    "Mul": dnnl.BINARY_MUL,
    "Sub": dnnl.BINARY_SUB,
    "Div": dnnl.BINARY_DIV,
    "Max": dnnl.BINARY_MAX,
    "Min": dnnl.BINARY_MIN,
}


@lowering(*_BINARY)
def binary(b: Builder, node: ir.Node) -> None:
    operands = []
    for i in range(2):
        const = b.constant_array(node, i)
        operands.append(const if const is not None else b.input(node, i))
    if all(isinstance(o, np.ndarray) for o in operands):
        raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} of two constants (fold it first)")
    shapes = [o.shape if isinstance(o, np.ndarray) else o.dims for o in operands]
    out_shape = tuple(np.broadcast_shapes(*shapes))
    a, c = operands
    if tuple(shapes[0]) != out_shape and tuple(shapes[1]) != out_shape:
        # Both broadcast (FocalNet's [N, C, 1, 1] * [N, 1, H, W]): the computed one is written out at the
        # output's shape first (oneDNN broadcasts src1 only).
        i = 0 if not isinstance(a, np.ndarray) else 1
        operands[i] = broadcast_to(b, operands[i], out_shape, node.name)
        shapes[i] = out_shape
        a, c = operands
    operands_a = a
    if tuple(shapes[0]) != out_shape or isinstance(a, np.ndarray):
        if node.op_type not in ("Add", "Mul", "Max", "Min") or tuple(shapes[1]) != out_shape:
            raise UnsupportedOpError(
                f"node {node.name!r}: {node.op_type} broadcasts its first input {shapes[0]} to {out_shape}"
            )
        a, c = c, a
        operands_a = a
    if isinstance(c, np.ndarray):
        full = c.astype(np.float32).reshape((1,) * (len(out_shape) - c.ndim) + c.shape)
        src1 = b.const(full)
    else:
        src1 = c
        if len(c.dims) != len(out_shape):
            src1 = b.view(
                b.as_plain(c, node.name),
                dnnl.MemoryDesc.plain((1,) * (len(out_shape) - len(c.dims)) + c.dims, c.dtype),
            )
        elif c.dims == a.dims:
            src1 = b.as_md(c, a.md, node.name)
    alg = _BINARY[node.op_type]
    merged = _merged_dims(a.dims, src1.memory.md.dims if isinstance(src1, Const) else src1.dims)
    layouts = _binary_layouts(a, src1)
    makers = [lambda p=p: dnnl.binary_pd(alg, p[0], p[1], p[0], dnnl.Attr()) for p in layouts]
    if merged is not None and b.first_fast(node.name, makers, fallback=False) is None:
        _merged_binary(b, node, alg, a, src1, merged)
        return
    pd = b.first_fast(node.name, makers)
    a_md, src1_md = pd.md(dnnl.QUERY_SRC_MD, 0), pd.md(dnnl.QUERY_SRC_MD, 1)
    moved = a_md != a.md
    a = b.as_md(a, a_md, node.name)
    if isinstance(src1, Const):
        if src1.memory.md != src1_md:
            src1 = b.const(src1.buffer, src1.buffer.shape, src1_md)
    else:
        src1 = b.as_md(src1, src1_md, node.name)
    in_place = (moved or b.is_last_use(node, 0 if operands[0] is operands_a else 1)) and not a.storage.external
    dst = b.view(a, a.md) if in_place else b.new_tensor(a.md)
    b.add_step(pd, [(dnnl.ARG_SRC, a), (dnnl.ARG_SRC_1, src1), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst)


def _merged_dims(a_dims, c_dims) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The same broadcast element-wise op on fewer dims: unit axes dropped, neighbouring axes merged where
    src1 spans both or broadcasts both, a leading 1 before a leading spanned run so that the run is the
    channel axis ([N, 2, C, H, W] * [N, 2, C, 1, 1], SKNet's and ResNeSt's attention, becomes
    [1, 2NC, HW] * [1, 2NC, 1]: oneDNN's per-channel broadcast).
    None when nothing merges."""
    runs: list[list[int]] = []  # [a size, src1 size] per merged run
    for da, dc in zip(a_dims, c_dims, strict=True):
        if da == 1:
            continue
        if runs and (runs[-1][1] == 1) == (dc == 1) and (runs[-1][1] != 1) == (dc == da):
            runs[-1][0] *= da
            runs[-1][1] *= dc
        else:
            runs.append([da, dc])
    if runs and runs[0][1] != 1:  # a leading full run would be the batch axis: make it the channels
        runs.insert(0, [1, 1])
    if len(runs) >= len(a_dims) or not 2 <= len(runs) <= 5:
        return None
    return tuple(r[0] for r in runs), tuple(r[1] for r in runs)


def _merged_binary(b: Builder, node: ir.Node, alg: int, a: Tensor, src1: Tensor | Const, merged) -> None:
    """A binary oneDNN has only ref:any for, run on plain views of the merged dims (see _merged_dims)."""
    a_dims, c_dims = merged
    a_view = b.view(b.as_plain(a, node.name), dnnl.MemoryDesc.plain(a_dims, a.dtype))
    if isinstance(src1, Const):
        c_view = b.const(np.ascontiguousarray(src1.buffer).reshape(c_dims))
    else:
        c_view = b.view(b.as_plain(src1, node.name), dnnl.MemoryDesc.plain(c_dims, src1.dtype))
    c_md = c_view.memory.md if isinstance(c_view, Const) else c_view.md
    pd = b.first_fast(node.name, [lambda: dnnl.binary_pd(alg, a_view.md, c_md, a_view.md, dnnl.Attr())])
    dst = b.new_tensor(a_view.md)
    b.add_step(pd, [(dnnl.ARG_SRC, a_view), (dnnl.ARG_SRC_1, c_view), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, b.view(dst, dnnl.MemoryDesc.plain(a.dims, a.dtype)))


def _binary_layouts(a: Tensor, src1: Tensor | Const) -> list[tuple[dnnl.MemoryDesc, dnnl.MemoryDesc]]:
    """(src0, src1) layout pairs to try: as they are, then src1 in src0's layout, then channels-last/plain."""
    s1 = src1.memory.md if isinstance(src1, Const) else src1.md
    pairs = [(a.md, s1), (a.md, with_layout_of(s1.dims, s1.dtype, a.md))]
    for md in layout_variants(a.md)[1:]:
        pairs.append((md, with_layout_of(s1.dims, s1.dtype, md)))
    return pairs


# ONNX element types -> oneDNN data types a run-time Cast converts between exactly (oneDNN's reorder
# rounds a float to the nearest integer where ONNX's Cast truncates, so float -> integer is refused).
_CAST_TARGETS = {1: dnnl.DT_F32, 10: dnnl.DT_F16, 16: dnnl.DT_BF16}


@lowering("Cast")
def cast(b: Builder, node: ir.Node) -> None:
    """Cast of data computed at run time (a model's own preprocessing: uint8 image -> float), a reorder."""
    src = b.input(node, 0)
    to = node.attributes.get_int("to", 1)
    if to not in _CAST_TARGETS:
        raise UnsupportedOpError(
            f"node {node.name!r}: Cast of run-time data to ONNX type {to} is not supported (only to float types)"
        )
    dst_dt = _CAST_TARGETS[to]
    if dst_dt == src.dtype:
        b.set_output(node, src)
        return
    dst = b.new_tensor(src.md.like(dst_dt))
    b.reorder(src, dst, node.name)
    b.set_output(node, dst)


@lowering("Softmax", "LogSoftmax")
def softmax(b: Builder, node: ir.Node) -> None:
    """Softmax (or its log, a classifier head trained with NLL loss) over one axis, moved innermost by one
    copy when it is not (oneDNN 3.2 has only ref:any for other axes: ResNeSt's split attention takes it
    over the radix axis)."""
    src = b.input(node, 0)
    rank = len(src.dims)
    axis = node.attributes.get_int("axis", -1) % rank
    perm = None
    if axis == rank - 1 or all(d == 1 for d in src.dims[axis + 1 :]):
        src = b.as_plain(src, node.name)
    else:
        src, perm = _innermost(b, src, [axis], f"{node.name} (axis innermost)")
        axis = rank - 1
    alg = dnnl.SOFTMAX_LOG if node.op_type == "LogSoftmax" else dnnl.SOFTMAX_ACCURATE
    pd = dnnl.softmax_pd(src.md, src.md, axis, dnnl.Attr(), alg)
    dst = b.new_tensor(src.md)
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst if perm is None else b.view(dst, dst.md.permute_axes(perm)))


def _innermost(b: Builder, src: Tensor, axes: list[int], label: str) -> tuple[Tensor, list[int]]:
    """`src` copied into a plain tensor whose last dims are `axes` (oneDNN 3.2 optimises reductions and
    softmax only there), with the permutation: view a result of the copy's dims with
    md.permute_axes(perm) to get it back in `src`'s dim order."""
    perm = [i for i in range(len(src.dims)) if i not in axes] + axes
    return permuted_copy(b, src, perm, label), perm


def _pool_geometry(node: ir.Node, spatial: tuple[int, ...], kernel: list[int]):
    nd = len(spatial)
    strides = list(node.attributes.get_ints("strides", [1] * nd))
    dilations = list(node.attributes.get_ints("dilations", [1] * nd))
    pads = list(node.attributes.get_ints("pads", [0] * (2 * nd)))
    auto_pad = node.attributes.get_string("auto_pad", "NOTSET")
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            out = -(-spatial[i] // strides[i])
            total = max((out - 1) * strides[i] + eff[i] - spatial[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    pad_l, pad_r = pads[:nd], list(pads[nd:])
    out = []
    ceil = node.attributes.get_int("ceil_mode", 0)
    for i in range(nd):
        span = spatial[i] + pad_l[i] + pad_r[i] - eff[i]
        o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
        if ceil and (o - 1) * strides[i] >= spatial[i] + pad_l[i]:
            o -= 1  # the last window must start inside the input (ONNX rule)
        pad_r[i] = max(pad_r[i], (o - 1) * strides[i] + eff[i] - spatial[i] - pad_l[i])
        out.append(o)
    return strides, [d - 1 for d in dilations], pad_l, pad_r, out


def _pool(b: Builder, node: ir.Node, alg: int, kernel: list[int] | None, src=None) -> Tensor:
    """Pooling of input 0 (or of `src`, a tensor standing in for it), set as the node's output."""
    src = b.input(node, 0) if src is None else src
    spatial = src.dims[2:]
    if kernel is None:  # global pooling
        kernel = list(spatial)
        strides, dil, pad_l, pad_r, out = (
            [1] * len(spatial),
            [0] * len(spatial),
            [0] * len(spatial),
            [0] * len(spatial),
            [1] * len(spatial),
        )
    else:
        strides, dil, pad_l, pad_r, out = _pool_geometry(node, spatial, kernel)
        if alg == dnnl.POOLING_MAX and any(dil):
            dst = _dilated_max(b, node, src, kernel, strides, dil, pad_l, pad_r, out)
            b.set_output(node, dst)
            return dst
        explicit = list(node.attributes.get_ints("pads", [0] * (2 * len(spatial))))[len(spatial) :]
        if (
            alg == dnnl.POOLING_AVG_INCLUDE_PADDING
            and node.attributes.get_int("ceil_mode", 0)
            and any(r > e for r, e in zip(pad_r, explicit, strict=False))
        ):
            src, pad_l, pad_r = _pad_counted_part(b, node, src, pad_l, pad_r, explicit)
            alg = dnnl.POOLING_AVG_EXCLUDE_PADDING
    dst_dims = (*src.dims[:2], *out)
    pd = b.first_fast(
        node.name,
        [
            lambda md=md: dnnl.pooling_pd(
                alg, md, with_layout_of(dst_dims, src.dtype, md), strides, kernel, dil, pad_l, pad_r, dnnl.Attr()
            )
            for md in layout_variants(src.md)
        ],
    )
    src_t = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    b.add_step(pd, [(dnnl.ARG_SRC, src_t), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst)
    return dst


def _dilated_max(b: Builder, node: ir.Node, src: Tensor, kernel, strides, dil, pad_l, pad_r, out) -> Tensor:
    """A dilated max pool, which oneDNN 3.2 runs only as ref:any: the maximum of the kernel's taps, each a
    window of the padded input (padding the lowest value) at stride 1, then a 1x1 pool for the stride (jit
    in channels-last only, so the taps are gathered in the layout that pool takes)."""
    dtype = DNNL_TO_NUMPY[src.dtype]
    lowest = float(np.iinfo(dtype).min) if np.issubdtype(dtype, np.integer) else -math.inf
    nd = len(kernel)
    padded = constant_padded(b, b.as_plain(src, node.name), [0, 0, *pad_l], [0, 0, *pad_r], lowest, node.name)
    full = (*src.dims[:2], *[(o - 1) * s + 1 for o, s in zip(out, strides, strict=True)])
    stride_pd = None
    if any(s > 1 for s in strides):
        zeros, dst_dims = [0] * nd, (*src.dims[:2], *out)
        stride_pd = b.first_fast(
            f"{node.name} (stride)",
            [
                lambda md=md: dnnl.pooling_pd(
                    dnnl.POOLING_MAX,
                    md,
                    with_layout_of(dst_dims, src.dtype, md),
                    strides,
                    [1] * nd,
                    zeros,
                    zeros,
                    zeros,
                    dnnl.Attr(),
                )
                for md in layout_variants(dnnl.MemoryDesc.plain(full, src.dtype))[::-1]
            ],
        )
    acc = b.new_tensor(stride_pd.md(dnnl.QUERY_SRC_MD) if stride_pd else dnnl.MemoryDesc.plain(full, src.dtype))
    for i, tap in enumerate(np.ndindex(*kernel)):
        offsets = (0, 0, *[t * (d + 1) for t, d in zip(tap, dil, strict=True)])
        window = b.view(padded, padded.md.submemory(full, offsets))
        dense = acc if i == 0 else b.new_tensor(acc.md)
        b.reorder(window, dense, f"{node.name} (tap {tap})")
        if i:
            pd = dnnl.binary_pd(dnnl.BINARY_MAX, acc.md, acc.md, acc.md, dnnl.Attr())
            b.add_step(pd, [(dnnl.ARG_SRC, acc), (dnnl.ARG_SRC_1, dense), (dnnl.ARG_DST, acc)], f"{node.name} (max)")
    if stride_pd is None:
        return acc
    dst = b.new_tensor(stride_pd.md(dnnl.QUERY_DST_MD))
    b.add_step(stride_pd, [(dnnl.ARG_SRC, acc), (dnnl.ARG_DST, dst)], f"{node.name} (stride)")
    return dst


def _pad_counted_part(b: Builder, node: ir.Node, src: Tensor, pad_l: list[int], pad_r: list[int], explicit: list[int]):
    """count_include_pad=1 with a ceil_mode window past the padding (torch's AvgPool2d(2, ceil_mode=True) of
    an odd size): ONNX, torch and Caffe count the padding but not the overhang, which neither oneDNN
    algorithm does. So the padding becomes real zeros and the pool excludes what is left, the overhang:
    (src, pad_l, pad_r) for that pool. int8 data pads with 0 (its zero point: the converter runs an average
    pool INT8 only with zero point 0)."""
    if node.attributes.get_string("auto_pad", "NOTSET") != "NOTSET":
        raise UnsupportedOpError(
            f"node {node.name!r}: AveragePool with auto_pad, ceil_mode=1 and count_include_pad=1 whose last "
            "window overhangs the padding is not supported"
        )
    if any(pad_l) or any(explicit):
        zeros = [0] * (len(src.dims) - len(pad_l))
        src = constant_padded(b, b.as_plain(src, node.name), zeros + pad_l, zeros + explicit, 0.0, node.name)
    return src, [0] * len(pad_l), [r - e for r, e in zip(pad_r, explicit, strict=True)]


@lowering("MaxPool")
def max_pool(b: Builder, node: ir.Node) -> None:
    if len(node.outputs) > 1 and node.outputs[1] is not None and node.outputs[1].uses():
        raise UnsupportedOpError(f"node {node.name!r}: MaxPool Indices output is not supported")
    if node.attributes.get_int("storage_order", 0):
        raise UnsupportedOpError(f"node {node.name!r}: MaxPool storage_order=1 is not supported")
    _pool(b, node, dnnl.POOLING_MAX, list(node.attributes.get_ints("kernel_shape", [])))


@lowering("AveragePool")
def average_pool(b: Builder, node: ir.Node, src=None) -> None:
    include = node.attributes.get_int("count_include_pad", 0)
    alg = dnnl.POOLING_AVG_INCLUDE_PADDING if include else dnnl.POOLING_AVG_EXCLUDE_PADDING
    _pool(b, node, alg, list(node.attributes.get_ints("kernel_shape", [])), src)


@lowering("GlobalAveragePool")
def global_average_pool(b: Builder, node: ir.Node) -> None:
    _pool(b, node, dnnl.POOLING_AVG_EXCLUDE_PADDING, None)


@lowering("GlobalMaxPool")
def global_max_pool(b: Builder, node: ir.Node) -> None:
    _pool(b, node, dnnl.POOLING_MAX, None)


def _scale_and_zero_point(b: Builder, node: ir.Node) -> tuple[float, int]:
    scale = b.constant_array(node, 1)
    if scale is None or scale.size != 1:
        raise UnsupportedOpError(
            f"node {node.name!r}: {node.op_type} needs a constant scalar scale (per-axis activation "
            "quantization is not supported)"
        )
    zp = b.constant_array(node, 2)
    if zp is not None and zp.size != 1:
        raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} needs a scalar zero point")
    return float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) if zp is not None else 0


@lowering("QuantizeLinear")
def quantize_linear(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    scale, zero_point = _scale_and_zero_point(b, node)
    zp = b.constant_array(node, 2)
    dtype = dnnl.DT_S8 if zp is not None and zp.dtype == np.int8 else dnnl.DT_U8
    tag = dnnl.TAG_ACDB if len(src.dims) == 4 else dnnl.PLAIN_TAG[len(src.dims)]
    dst = b.new_tensor(dnnl.MemoryDesc.with_tag(src.dims, dtype, tag))
    b.reorder(src, dst, node.name, dst_scale=scale, dst_zero_point=zero_point)
    b.set_output(node, dst)


@lowering("DequantizeLinear")
def dequantize_linear(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    scale, zero_point = _scale_and_zero_point(b, node)
    dst = b.new_tensor(src.md.like(dnnl.DT_F32))
    b.reorder(src, dst, node.name, src_scale=scale, src_zero_point=zero_point)
    b.set_output(node, dst)


@lowering("Requantize", domain=ops.DOMAIN)
def requantize(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    y_type = ONNX_TO_DNNL[node.attributes.get_int("y_type", ops.UINT8)]
    dst = b.new_tensor(src.md.like(y_type))
    b.reorder(
        src,
        dst,
        node.name,
        src_scale=node.attributes.get_float("x_scale", 1.0),
        dst_scale=node.attributes.get_float("y_scale", 1.0),
        src_zero_point=node.attributes.get_int("x_zero_point", 0),
        dst_zero_point=node.attributes.get_int("y_zero_point", 0),
    )
    b.set_output(node, dst)


_REDUCTIONS = {  # op -> (oneDNN algorithm, its p)
    "ReduceMean": (dnnl.REDUCTION_MEAN, 0.0),
    "ReduceMax": (dnnl.REDUCTION_MAX, 0.0),
    "ReduceMin": (dnnl.REDUCTION_MIN, 0.0),
    "ReduceSum": (dnnl.REDUCTION_SUM, 0.0),
    "ReduceL2": (dnnl.REDUCTION_NORM_LP_SUM, 2.0),  # ConvNeXt-V2's global response normalisation
    "ReduceL1": (dnnl.REDUCTION_NORM_LP_SUM, 1.0),
    "ReduceSumSquare": (dnnl.REDUCTION_NORM_LP_POWER_P_SUM, 2.0),
}
# A float mean or max over H and W of [N, C, H, W] is a global pool, which oneDNN 3.2 runs jit in the layouts
# the convolutions leave (1-D pooling has only a plain-layout kernel). Its reduction is optimised only on plain
# data (a reorder out of the blocked layout first) and costs per output point: a squeeze-excite mean of
# 16x1152x4x4 took 2.3 ms as a reduction (timm's EfficientNets, x.mean((2, 3))).
_GLOBAL_POOLS = {"ReduceMean": dnnl.POOLING_AVG_EXCLUDE_PADDING, "ReduceMax": dnnl.POOLING_MAX}
_FLOATS = (dnnl.DT_F32, dnnl.DT_BF16)  # pooled only: integer data keeps the reduction's rounding and saturation


@lowering(*_REDUCTIONS)
def reduce(b: Builder, node: ir.Node) -> None:
    """ReduceMean/Max/Min/Sum/L1/L2/SumSquare over constant axes; a float mean or max over every spatial
    axis is a global pool (_GLOBAL_POOLS)."""
    src = b.input(node, 0)
    rank = len(src.dims)
    axes_input = b.constant_array(node, 1)
    if axes_input is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} needs constant axes")
    raw = (
        [int(a) for a in axes_input.reshape(-1)]
        if axes_input is not None
        else list(node.attributes.get_ints("axes", []))
    )
    if not raw and node.attributes.get_int("noop_with_empty_axes", 0):
        b.set_output(node, src)
        return
    axes = sorted({a % rank for a in raw}) if raw else list(range(rank))
    alg, p = _REDUCTIONS[node.op_type]
    if node.op_type in _GLOBAL_POOLS and rank == 4 and axes == list(range(2, rank)) and src.dtype in _FLOATS:
        dst = _pool(b, node, _GLOBAL_POOLS[node.op_type], None, src)
        _reduced_output(b, node, dst, src.dims, axes, src.dtype)
        return
    if not p:
        _reduction(b, node, src, alg, axes, src.dtype)
        return
    # oneDNN 3.2's lp-norm reductions are ref:any only: |x|^p element-wise, a (fast) sum, then the root.
    power = _eltwise_copy(b, src, dnnl.ELTWISE_SQUARE if p == 2 else dnnl.ELTWISE_ABS, f"{node.name} (|x|^{p:g})")
    _reduction(b, node, power, dnnl.REDUCTION_SUM, axes, src.dtype)
    if alg == dnnl.REDUCTION_NORM_LP_SUM and p == 2:
        out = b.values[node.outputs[0].name]
        pd = dnnl.eltwise_pd(dnnl.ELTWISE_SQRT, out.md, out.md, 0.0, 0.0, dnnl.Attr())
        b.add_step(pd, [(dnnl.ARG_SRC, out), (dnnl.ARG_DST, out)], f"{node.name} (square root)")


def _eltwise_copy(b: Builder, src: Tensor, alg: int, label: str) -> Tensor:
    """alg(src) into a new tensor of src's layout (src itself stays readable)."""
    pd = b.first_fast(
        label, [lambda md=md: dnnl.eltwise_pd(alg, md, md, 0.0, 0.0, dnnl.Attr()) for md in layout_variants(src.md)]
    )
    src = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), label)
    dst = b.new_tensor(src.md)
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, dst)], label)
    return dst


def _reduction(
    b: Builder,
    node: ir.Node,
    src,
    alg: int,
    axes: list[int],
    dst_dtype: int,
    attr: dnnl.Attr | None = None,
) -> None:
    """One reduction primitive over `axes` (in the first layout with an optimised kernel), then keepdims;
    a mean, max or sum of few elements per output without attributes is a pooling window (_outer_pool).

    oneDNN 3.2 has optimised reductions only over the innermost dims of a plain tensor (a mean over H, W
    of channels-last [N, H, W, C] data is ref:any), so other axes are first moved innermost by one copy; the
    result, its kept axes in their order and 1s elsewhere, is the same bytes as the keepdims shape."""
    kept = tuple(1 if i in axes else d for i, d in enumerate(src.dims))
    rank = len(src.dims)

    def flat(plain: Tensor) -> None:
        """The reduction over the innermost axes of a plain tensor as [kept elements, reduced elements] ->
        [kept, 1]: oneDNN 3.2's jit reduction in 2-D, where 6-D had only ref:any (Hiera's max took 19 ms)."""
        lead = int(np.prod(kept))
        two_d = b.view(plain, dnnl.MemoryDesc.plain((lead, int(np.prod(plain.dims)) // lead), plain.dtype))
        out = dnnl.MemoryDesc.plain((lead, 1), dst_dtype)
        pd = b.first_fast(node.name, [lambda: dnnl.reduction_pd(alg, two_d.md, out, attr)])
        dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
        b.add_step(pd, [(dnnl.ARG_SRC, two_d), (dnnl.ARG_DST, dst)], node.name)
        _reduced_output(b, node, b.view(dst, dnnl.MemoryDesc.plain(kept, dst_dtype)), src.dims, axes, dst_dtype)

    pooled = attr is None and alg in _POOLED_REDUCTIONS and src.dtype == dst_dtype in _FLOATS
    if pooled and _outer_pool(b, node, src, axes, alg, dst_dtype, kept):
        return
    attr = attr or dnnl.Attr()
    if axes != list(range(rank - len(axes), rank)):
        moved, _ = _innermost(b, src, axes, f"{node.name} (reduced axes innermost)")
        flat(moved)
        return
    makers = [
        lambda md=md: dnnl.reduction_pd(alg, md, with_layout_of(kept, dst_dtype, md), attr)
        for md in layout_variants(src.md)
    ]
    pd = b.first_fast(node.name, makers, fallback=False)
    if pd is None and rank > 2:  # only ref:any in this rank
        flat(b.as_plain(src, node.name))
        return
    pd = pd or b.first_fast(node.name, makers)
    src_t = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    b.add_step(pd, [(dnnl.ARG_SRC, src_t), (dnnl.ARG_DST, dst)], node.name)
    _reduced_output(b, node, dst, src.dims, axes, dst_dtype)


# oneDNN reductions that are one pooling window (a sum is the mean times the count, as a post-op)
_POOLED_REDUCTIONS = {
    dnnl.REDUCTION_MEAN: dnnl.POOLING_AVG_EXCLUDE_PADDING,
    dnnl.REDUCTION_MAX: dnnl.POOLING_MAX,
    dnnl.REDUCTION_SUM: dnnl.POOLING_AVG_EXCLUDE_PADDING,
}
# Pool when each output reduces at most this many elements and there are at least POOL_MIN_OUTPUTS outputs.
# Measured on [outputs, reduced] plain data, one thread (AMX Xeon), reduction -> pooling ms: 602112x4 105 ->
# 1.5, 18432x16 5.3 -> 0.30, 8192x49 4.0 -> 0.69, 4096x256 2.1 -> 1.0, 2048x512 0.72 -> 1.2, 1024x3136 0.89
# -> 5.4, 16x49 0.042 -> 0.089: the reduction costs a few hundred ns per output point, pooling ~1 ns an element.
POOL_REDUCED_UP_TO = 256
POOL_MIN_OUTPUTS = 64


def _outer_pool(b: Builder, node: ir.Node, src, axes: list[int], alg: int, dst_dtype: int, kept) -> bool:
    """The reduction as one pooling window over the reduced elements moved outermost (one permuting copy):
    [reduced, kept] memory is [1, kept, 1, reduced] in channels-last order, which oneDNN's pooling runs
    vectorised over the kept elements, where its reduction primitive works per output point (Hiera's max
    over 4 of 2.4M points took 505 ms). False where the reduction is the faster (see POOL_REDUCED_UP_TO) or
    pooling has no optimised kernel."""
    count = int(np.prod([src.dims[i] for i in axes]))
    lead = int(np.prod(kept))
    if not 2 <= count <= POOL_REDUCED_UP_TO or lead < POOL_MIN_OUTPUTS:
        return False
    post_ops = None
    if alg == dnnl.REDUCTION_SUM:
        post_ops = dnnl.PostOps()
        post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, float(count), 0.0)
    win = dnnl.MemoryDesc.with_tag((1, lead, 1, count), src.dtype, dnnl.TAG_ACDB)
    out = dnnl.MemoryDesc.with_tag((1, lead, 1, 1), dst_dtype, dnnl.TAG_ACDB)
    geometry = ([1, 1], [1, count], [0, 0], [0, 0], [0, 0])
    pool = _POOLED_REDUCTIONS[alg]
    make = [lambda: dnnl.pooling_pd(pool, win, out, *geometry, dnnl.Attr(post_ops=post_ops))]
    pd = b.first_fast(node.name, make, fallback=False)
    if pd is None:
        return False
    perm = axes + [i for i in range(len(src.dims)) if i not in axes]
    moved = permuted_copy(b, src, perm, f"{node.name} (reduced axes outermost)")
    dst = b.new_tensor(out)
    b.add_step(pd, [(dnnl.ARG_SRC, b.view(moved, win)), (dnnl.ARG_DST, dst)], node.name)
    _reduced_output(b, node, b.view(dst, dnnl.MemoryDesc.plain(kept, dst_dtype)), src.dims, axes, dst_dtype)
    return True


def _reduced_output(b: Builder, node: ir.Node, dst, dims, axes: list[int], dst_dtype: int) -> None:
    """The reduction's keepdims result as the node's output, squeezed when keepdims is 0."""
    if not node.attributes.get_int("keepdims", 1):
        squeezed = tuple(d for i, d in enumerate(dims) if i not in axes)
        dst = b.view(b.as_plain(dst, node.name), dnnl.MemoryDesc.plain(squeezed or (1,), dst_dtype))
    b.set_output(node, dst)


@lowering("Binary", domain=ops.DOMAIN)
def int8_binary(b: Builder, node: ir.Node) -> None:
    """int8kit.Binary: oneDNN's binary primitive with int8 sources; every scale is a source scale.

    dst = (a_scale * A) op (b_scale * B) / y_scale is written with source scales a_scale / y_scale and
    (for add) b_scale / y_scale, or (for mul) b_scale, so the primitive needs no destination scale.
    """
    a, other = b.input(node, 0), b.input(node, 1)
    alg_name = node.attributes.get_string("alg", "")
    if alg_name not in ("add", "mul"):
        raise UnsupportedOpError(f"node {node.name!r}: Binary alg {alg_name!r} is not add or mul")
    y_type = node.attributes.get_int("y_type", ops.FLOAT)
    y_scale = node.attributes.get_float("y_scale", 1.0) if y_type != ops.FLOAT else 1.0
    a_scale = node.attributes.get_float("a_scale", 1.0) / y_scale
    b_scale = node.attributes.get_float("b_scale", 1.0)
    b_scale = b_scale / y_scale if alg_name == "add" else b_scale
    if other.dtype == dnnl.DT_F32 and alg_name == "add":
        b_scale = 1.0 / y_scale
    if len(other.dims) != len(a.dims):
        other = b.view(
            b.as_plain(other, node.name),
            dnnl.MemoryDesc.plain((1,) * (len(a.dims) - len(other.dims)) + other.dims, other.dtype),
        )
    alg = dnnl.BINARY_ADD if alg_name == "add" else dnnl.BINARY_MUL
    dst_dt = ONNX_TO_DNNL[y_type]
    if dst_dt == dnnl.DT_F32 and a.dtype != dnnl.DT_F32:
        # oneDNN 3.2's binary kernels need src0 in the destination's type (int8 -> f32 is ref:any only): A's
        # integers as floats, exactly, still scaled by a_scale in the primitive.
        a = b.as_md(a, a.md.like(dnnl.DT_F32), node.name)
    post_ops = None
    clip = node.attributes.get("clip")
    if clip is not None:
        post_ops = dnnl.PostOps()
        lo, hi = clip.as_floats()
        post_ops.append_eltwise(dnnl.ELTWISE_CLIP_V2, lo, hi)
    attr = dnnl.Attr({dnnl.ARG_SRC: 0, dnnl.ARG_SRC_1: 0}, post_ops)
    pd = b.first_fast(
        node.name,
        [lambda p=p: dnnl.binary_pd(alg, p[0], p[1], p[0].like(dst_dt), attr) for p in _binary_layouts(a, other)],
    )
    a_t = b.as_md(a, pd.md(dnnl.QUERY_SRC_MD, 0), node.name)
    other_t = b.as_md(other, pd.md(dnnl.QUERY_SRC_MD, 1), node.name)
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    args = [
        (dnnl.ARG_SRC, a_t),
        (dnnl.ARG_SRC_1, other_t),
        (dnnl.ARG_DST, dst),
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_SRC, b.scales([a_scale])),
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_SRC_1, b.scales([b_scale])),
    ]
    b.add_step(pd, args, node.name)
    b.set_output(node, dst)


@lowering("Affine", domain=ops.DOMAIN)
def affine(b: Builder, node: ir.Node) -> None:
    """int8kit.Affine: one binary multiply by the per-channel scale, the shift and activations as post-ops.

    INT8 (x_scale set): real x = x_scale * (q - x_zp), so the kernel multiplies q by scale * x_scale /
    y_scale and adds (shift - x_zp * x_scale * scale) / y_scale; a destination zero point is a final
    linear post-op (the activations, all positively homogeneous or clips, run in the output's units).
    """
    from int8kit.runtime.lowering_compute import append_fake_quant, eltwise_params

    src = b.input(node, 0)
    scale, shift = b.constant_array(node, 1), b.constant_array(node, 2)
    if scale is None or shift is None:
        raise UnsupportedOpError(f"node {node.name!r}: Affine needs constant scale and shift")
    dims_in = tuple(src.dims)
    if len(dims_in) > 2 and all(d == 1 for d in dims_in[2:]):
        # [N, C, 1, 1] (a BN after global pooling) as [N, C]: oneDNN 3.2's jit binary kernel with a
        # per-channel binary post-op computes wrong values when every spatial dim is 1 and N > 1.
        src = b.view(b.as_plain(src, node.name), dnnl.MemoryDesc.plain(dims_in[:2], src.dtype))
    scale, shift = scale.astype(np.float64).reshape(-1), shift.astype(np.float64).reshape(-1)
    x_scale = node.attributes.get_float("x_scale", None)
    y_type = node.attributes.get_int("y_type", ops.FLOAT)
    y_scale = node.attributes.get_float("y_scale", 1.0) if y_type != ops.FLOAT else 1.0
    chain = ops.decode_post_ops(list(node.attributes["post_ops"].as_strings()) if "post_ops" in node.attributes else [])
    if x_scale is not None:
        x_zp = node.attributes.get_int("x_zero_point", 0)
        shift = shift - x_zp * x_scale * scale
        scale = scale * x_scale
    mul, add = scale / y_scale, shift / y_scale
    if y_type != ops.FLOAT and any(op.kind not in ("relu", "clip", "leakyrelu", "fq") for op in chain):
        raise UnsupportedOpError(f"node {node.name!r}: INT8 Affine with post-ops {chain} is not supported")
    dims = (1, src.dims[1]) + (1,) * (len(src.dims) - 2)
    dst_dt = ONNX_TO_DNNL[y_type]

    tail = _EltwiseSteps()  # what follows the shift: activations, the fq grid, a destination zero point
    for op in chain:
        if op.kind == "fq":
            s, zp, lo, hi = op.params  # the fq grid, in the output's units
            append_fake_quant(tail, s / y_scale, zp, lo, hi)
        elif op.kind == "clip":
            tail.append_eltwise(dnnl.ELTWISE_CLIP_V2, op.params[0] / y_scale, op.params[1] / y_scale)
        else:
            tail.append_eltwise(*eltwise_params(op.kind, op.params))
    y_zp = node.attributes.get_int("y_zero_point", 0)
    if y_zp:
        tail.append_eltwise(dnnl.ELTWISE_LINEAR, 1.0, float(y_zp))

    def make(md: dnnl.MemoryDesc, with_tail: bool = True) -> dnnl.PrimitiveDesc:
        c_md = with_layout_of(dims, dnnl.DT_F32, md)
        post_ops = dnnl.PostOps()
        post_ops.append_binary(dnnl.BINARY_ADD, c_md)
        for step in tail if with_tail else ():
            post_ops.append_eltwise(*step)
        return dnnl.binary_pd(dnnl.BINARY_MUL, md, c_md, md.like(dst_dt), dnnl.Attr(None, post_ops))

    candidates = layout_variants(src.md)
    if dst_dt == dnnl.DT_F32 and src.dtype != dnnl.DT_F32:
        # oneDNN 3.2 has only ref:any for an int8 source with an f32 destination (RepVGG's identity-branch
        # BN feeding a float sum): then the integers are read as floats, exactly, by one reorder first.
        candidates += [md.like(dnnl.DT_F32) for md in layout_variants(src.md)]
    pd, after = b.first_fast(node.name, [lambda md=md: make(md) for md in candidates], fallback=False), ()
    if pd is None and dst_dt == dnnl.DT_F32 and tail:
        # oneDNN 3.2's binary kernels with the fq grid's round as a post-op are ref:any only (PP-HGNetV2's
        # head: 6 ms for 16 x 2048 values); a float result takes those steps after the kernel, in place.
        pd = b.first_fast(node.name, [lambda md=md: make(md, with_tail=False) for md in candidates], fallback=False)
        after = tail if pd is not None else ()
    if pd is None:
        pd = b.first_fast(node.name, [lambda md=md: make(md) for md in candidates])
    src_md = pd.md(dnnl.QUERY_SRC_MD, 0)
    src_t = b.as_md(src, src_md, node.name)
    c_md = with_layout_of(dims, dnnl.DT_F32, src_md)
    mul_c = b.const(mul.astype(np.float32).reshape(dims), dims, c_md)
    add_c = b.const(add.astype(np.float32).reshape(dims), dims, c_md)
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    args = [(dnnl.ARG_SRC, src_t), (dnnl.ARG_SRC_1, mul_c), (dnnl.ARG_DST, dst), (dnnl.post_op_arg(0), add_c)]
    b.add_step(pd, args, node.name)
    for alg, alpha, beta in after:
        step = dnnl.eltwise_pd(alg, dst.md, dst.md, alpha, beta, dnnl.Attr())
        b.add_step(step, [(dnnl.ARG_SRC, dst), (dnnl.ARG_DST, dst)], f"{node.name} (after the kernel)")
    if tuple(dst.dims) != dims_in:
        dst = b.view(b.as_plain(dst, node.name), dnnl.MemoryDesc.plain(dims_in, dst.dtype))
    b.set_output(node, dst)


class _EltwiseSteps(list):
    """(algorithm, alpha, beta) steps, collected through the PostOps interface (append_fake_quant writes it)."""

    def append_eltwise(self, alg: int, alpha: float = 0.0, beta: float = 0.0) -> None:
        self.append((alg, alpha, beta))


@lowering("Mean", domain=ops.DOMAIN)
def int8_mean(b: Builder, node: ir.Node) -> None:
    """int8kit.Mean: the float mean of INT8 data over `axes`, x_scale * (mean(q) - x_zero_point), written
    float or rounded onto y's INT8 grid.

    Over H and W (squeeze-excite): an int8 pooling onto an INT8 grid (_window_mean_as_pool), else, for a float
    output, a depthwise convolution of ones (_window_mean_as_conv): oneDNN 3.2's reduction is optimised only
    when the reduced axes are innermost (nchw) and its int8 pooling cannot write f32, while INT8 convolutions
    write nhwc, so a reduction would first reorder the whole tensor. Other axes: one reduction reading the
    INT8 tensor and writing f32, with the dequantization as a linear post-op. No dequantized copy of the
    (large) input is ever made.
    """
    src = b.input(node, 0)
    rank = len(src.dims)
    axes = sorted(a % rank for a in list(node.attributes.get_ints("axes", [])))
    scale, zp = node.attributes.get_float("x_scale", 1.0), node.attributes.get_int("x_zero_point", 0)
    y_type = node.attributes.get_int("y_type", ops.FLOAT)
    y = (ONNX_TO_DNNL[y_type], node.attributes.get_float("y_scale", 1.0), node.attributes.get_int("y_zero_point", 0))
    if rank == 4 and axes == [2, 3]:
        n, c, h, w = src.dims
        whole = ([1, 1], [0, 0], [0, 0], [1, 1])
        dst = _window_mean_as_pool(b, node, src, [h, w], whole, scale, zp, y)
        if dst is None:
            dst = _window_mean_as_conv(b, node, src, [h, w], whole, scale, zp, y)
        if dst is not None:
            if not node.attributes.get_int("keepdims", 1):
                dst = b.view(b.as_plain(dst, node.name), dnnl.MemoryDesc.plain((n, c), dst.dtype))
            b.set_output(node, dst)
            return
    post_ops = dnnl.PostOps()
    post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, scale, -scale * zp)
    _reduction(b, node, src, dnnl.REDUCTION_MEAN, axes, dnnl.DT_F32, dnnl.Attr(None, post_ops))
    if y_type != ops.FLOAT:
        _round_output(b, node, y)


def _round_output(b: Builder, node: ir.Node, y: tuple[int, float, int]) -> None:
    """The node's float output, then rounded onto y's grid (oneDNN type, scale, zero point) by one reorder."""
    average = b.values[node.outputs[0].name]
    out = b.new_tensor(average.md.like(y[0]))
    b.reorder(average, out, f"{node.name} (quantized)", dst_scale=y[1], dst_zero_point=y[2])
    b.set_output(node, out)


# (source type, destination type) -> how far the destination's codes sit above the source's for the same
# real value on two INT8 grids of one scale (u8 code = s8 code + 128, zero points moved alike).
_INT8_SHIFT = {(dnnl.DT_S8, dnnl.DT_U8): 128, (dnnl.DT_U8, dnnl.DT_S8): -128}


def _window_mean_as_pool(
    b: Builder, node: ir.Node, src, kernel: list[int], geometry: tuple, scale: float, zp: int, y: tuple[int, float, int]
) -> Tensor | None:
    """The mean of INT8 data over each `kernel` window, rounded onto y's INT8 grid, by oneDNN's int8 average
    pooling with the requantization as a linear post-op: round(x_scale / y_scale * (avg(q) - zp) + y_zp).
    Padding counts as real zeros over the whole kernel area (the caller checks that is the op's meaning),
    which code 0 is only without a source zero point.

    The depthwise convolution of ones runs an H x W window per output on oneDNN 3.2's jit_int8 kernel: a
    squeeze-excite mean of 16x480x14x14 took 0.9 ms there and 0.024 ms as this pooling. That pooling writes
    only its source's type, so a u8 grid of s8 data is written as s8 codes 128 lower and moved onto u8 by a
    reorder of the (small) result, exact because the two grids saturate at the same reals (and vice versa).
    The zero point is added before the rounding, as oneDNN's destination zero points are: the two differ
    only on an exact float tie. None for a float output, padding of zero-point data, or no optimised kernel.
    """
    y_dt, y_scale, y_zp = y
    strides, pad_l, pad_r, out = geometry
    padded = any(pad_l) or any(pad_r)
    if y_dt == dnnl.DT_F32 or (padded and zp) or src.dtype not in (dnnl.DT_S8, dnnl.DT_U8):
        return None
    shift = _INT8_SHIFT.get((src.dtype, y_dt), 0)
    ratio = scale / y_scale
    post_ops = dnnl.PostOps()
    post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, ratio, y_zp - shift - ratio * zp)
    n, c = src.dims[:2]
    try:
        pd = dnnl.pooling_pd(
            dnnl.POOLING_AVG_INCLUDE_PADDING if padded else dnnl.POOLING_AVG_EXCLUDE_PADDING,
            src.md,
            dnnl.MemoryDesc.any((n, c, *out), src.dtype),
            strides,
            kernel,
            [0] * len(kernel),
            pad_l,
            pad_r,
            dnnl.Attr(None, post_ops),
        )
    except dnnl.DnnlError:
        return None
    if pd.impl_info().startswith("ref"):
        return None
    pooled = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, pooled)], node.name)
    if not shift:
        return pooled
    dst = b.new_tensor(pooled.md.like(y_dt))
    if shift > 0:
        b.reorder(pooled, dst, f"{node.name} (onto its u8 grid)", dst_zero_point=shift)
    else:
        b.reorder(pooled, dst, f"{node.name} (onto its s8 grid)", src_zero_point=-shift)
    return dst


def _window_mean_as_conv(
    b: Builder, node: ir.Node, src, kernel: list[int], geometry: tuple, scale: float, zp: int, y: tuple[int, float, int]
) -> Tensor | None:
    """The mean of INT8 data over each `kernel` window (geometry: strides, pad_l, pad_r, output H, W) as a
    depthwise convolution with a kernel of ones: sum(q - zp) exactly in s32, times x_scale / window area,
    written f32 or rounded once onto y's grid. Padding counts as real zeros (the caller checks that
    is the op's meaning). Returns the output tensor, or None when oneDNN has no optimised kernel for it, or
    its int8 convolutions are not exact on this CPU (they halve the ones of an s8 source without VNNI)."""
    if not precision.int8_kernels_exact():
        return None
    n, c = src.dims[:2]
    strides, pad_l, pad_r, out = geometry
    weights_dims = (c, 1, 1, *kernel)
    y_dt, y_scale, y_zp = y
    masks, zps = {dnnl.ARG_SRC: 0, dnnl.ARG_WEIGHTS: 0}, ({dnnl.ARG_SRC: 0} if zp else {})
    if y_dt != dnnl.DT_F32:
        masks[dnnl.ARG_DST] = 0
        if y_zp:
            zps[dnnl.ARG_DST] = 0
    try:
        pd = dnnl.convolution_pd(
            src.md,
            dnnl.MemoryDesc.any(weights_dims, dnnl.DT_S8),
            None,
            dnnl.MemoryDesc.any((n, c, *out), y_dt),
            strides,
            [0, 0],
            pad_l,
            pad_r,
            dnnl.Attr(masks, None, zps),
        )
    except dnnl.DnnlError:
        return None
    if pd.impl_info().startswith("ref"):
        return None
    ones = b.reordered_const(
        f"{node.name}/ones", np.ones(weights_dims, np.int8), weights_dims, pd.md(dnnl.QUERY_WEIGHTS_MD)
    )
    args = [
        (dnnl.ARG_SRC, b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)),
        (dnnl.ARG_WEIGHTS, ones),
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_SRC, b.scales([scale])),
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_WEIGHTS, b.scales([1.0 / int(np.prod(kernel))])),
    ]
    if zp:
        args.append((dnnl.ARG_ATTR_ZERO_POINTS | dnnl.ARG_SRC, b.zero_points([zp])))
    if y_dt != dnnl.DT_F32:
        args.append((dnnl.ARG_ATTR_SCALES | dnnl.ARG_DST, b.scales([y_scale])))
        if y_zp:
            args.append((dnnl.ARG_ATTR_ZERO_POINTS | dnnl.ARG_DST, b.zero_points([y_zp])))
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    b.add_step(pd, [*args, (dnnl.ARG_DST, dst)], node.name)
    return dst


@lowering("AveragePool", domain=ops.DOMAIN)
def int8_average_pool(b: Builder, node: ir.Node) -> None:
    """int8kit.AveragePool: ONNX's AveragePool of INT8 data, x_scale * (avg(q) - x_zero_point), written
    float or (y_type/y_scale/y_zero_point) rounded once onto that grid, as a QuantizeLinear after the
    float pool would. A depthwise convolution of ones where every window's divisor is the kernel area
    (no padding, or padding counted as zeros of a zero-point-free input); else dequantize, pool in
    float, quantize."""
    src = b.input(node, 0)
    kernel = list(node.attributes.get_ints("kernel_shape", []))
    scale, zp = node.attributes.get_float("x_scale", 1.0), node.attributes.get_int("x_zero_point", 0)
    y_type = node.attributes.get_int("y_type", ops.FLOAT)
    y = (ONNX_TO_DNNL[y_type], node.attributes.get_float("y_scale", 1.0), node.attributes.get_int("y_zero_point", 0))
    strides, dil, pad_l, pad_r, out = _pool_geometry(node, src.dims[2:], kernel)
    explicit = list(node.attributes.get_ints("pads", [0] * (2 * len(kernel))))[len(kernel) :]
    padded = any(pad_l) or any(pad_r)
    counts_whole_kernel = not padded or (node.attributes.get_int("count_include_pad", 0) and not zp)
    if len(kernel) == 2 and not any(dil) and counts_whole_kernel and list(pad_r) == explicit:
        geometry = (strides, pad_l, pad_r, out)
        dst = _window_mean_as_pool(b, node, src, kernel, geometry, scale, zp, y)
        if dst is None:
            dst = _window_mean_as_conv(b, node, src, kernel, geometry, scale, zp, y)
        if dst is not None:
            b.set_output(node, dst)
            return
    real = b.new_tensor(src.md.like(dnnl.DT_F32))
    b.reorder(src, real, f"{node.name} (dequantized)", src_scale=scale, src_zero_point=zp)
    average_pool(b, node, real)
    if y_type != ops.FLOAT:
        _round_output(b, node, y)
