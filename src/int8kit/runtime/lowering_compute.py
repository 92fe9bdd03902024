"""Lowerings of the fused int8kit Conv and Dense ops to oneDNN convolution / inner product.

oneDNN picks every layout (`format_tag any`); weights are reordered once into its choice. INT8
follows oneDNN v3 quantization: dst = post_ops(x_scale * w_scale[oc] * acc + bias) / y_scale, with
scales passed as runtime arguments and the residual added by a `sum` post-op in dst's buffer.
A float node the precision plan puts in bf16 (see `precision`) reads bf16 sources and weights with an f32
bias, accumulates in f32 and writes bf16 where every reader takes bf16 (else f32).
On a CPU whose oneDNN int8 kernels are not exact (no VNNI or AMX: precision.int8_kernels_exact), an INT8
node runs the f32 kernel over what the QDQ file computes instead: dequantized source, residual and weights,
its output quantized by a reorder. Correct to float rounding, with no INT8 speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from int8kit import op_table, ops
from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl, layouts, precision
from int8kit.runtime.compile import ONNX_TO_DNNL, Builder, Tensor
from int8kit.runtime.registry import lowering

# Post-op kind -> (oneDNN algorithm, parameter defaults), from the op table.
ELTWISE_POST_OPS = {kind: (getattr(dnnl, alg), defaults) for kind, (alg, defaults) in op_table.POST_OP_KERNELS.items()}


def eltwise_params(kind: str, params: tuple[float, ...]) -> tuple[int, float, float]:
    """oneDNN algorithm, alpha and beta of one activation (ONNX defaults where params are absent)."""
    alg, defaults = ELTWISE_POST_OPS[kind]
    values = list(params) + list(defaults[len(params) :])
    values += [0.0] * (2 - len(values))
    return alg, float(values[0]), float(values[1])


def append_fake_quant(post_ops: dnnl.PostOps, scale: float, zero_point: float, qmin: float, qmax: float) -> None:
    """(clip(round(v / scale + zp), qmin, qmax) - zp) * scale as four eltwise post-ops (a Q -> DQ pair)."""
    post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, 1.0 / scale, zero_point)
    post_ops.append_eltwise(dnnl.ELTWISE_ROUND, 0.0, 0.0)
    post_ops.append_eltwise(dnnl.ELTWISE_CLIP_V2, qmin, qmax)
    post_ops.append_eltwise(dnnl.ELTWISE_LINEAR, scale, -zero_point * scale)


@dataclass(frozen=True)
class Quant:
    """The INT8 attributes of a fused Conv/Dense (None for FP32)."""

    x_scale: float
    w_scales: np.ndarray
    y_scale: float | None
    y_type: int
    sum_scale: float | None
    x_zero_point: int = 0
    y_zero_point: int = 0
    sum_zero_point: int = 0

    @staticmethod
    def of(node: ir.Node, weights: np.ndarray) -> Quant | None:
        if weights.dtype != np.int8:
            return None
        x_scale = node.attributes.get_float("x_scale", None)
        w_attr = node.attributes.get("w_scales")
        if x_scale is None or w_attr is None:
            raise UnsupportedOpError(f"node {node.name!r}: int8 weights need x_scale and w_scales attributes")
        y_type = node.attributes.get_int("y_type", ops.FLOAT)
        y_scale = node.attributes.get_float("y_scale", None)
        if y_type != ops.FLOAT and y_scale is None:
            raise UnsupportedOpError(f"node {node.name!r}: y_type {y_type} needs a y_scale attribute")
        return Quant(
            x_scale,
            np.asarray(w_attr.as_floats(), dtype=np.float32),
            y_scale,
            y_type,
            node.attributes.get_float("sum_scale", None),
            node.attributes.get_int("x_zero_point", 0),
            node.attributes.get_int("y_zero_point", 0),
            node.attributes.get_int("sum_zero_point", 0),
        )


def _weights(b: Builder, node: ir.Node) -> np.ndarray:
    w = b.constant_array(node, 1)
    if w is None:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op_type}): weights must be a constant initializer")
    return w


def _data_types(b: Builder, node: ir.Node, q: Quant | None, src: Tensor) -> tuple[int, int, int]:
    """(source, weights, destination) oneDNN data types: INT8, bf16 or FP32."""
    if q is not None and precision.node_attr(node) == "bf16":
        raise UnsupportedOpError(f"node {node.name!r}: precision 'bf16' needs float weights, not int8")
    int8_src = src.dtype in (dnnl.DT_U8, dnnl.DT_S8)
    if (q is not None) != int8_src:
        raise UnsupportedOpError(
            f"node {node.name!r}: {'int8' if q else 'float'} weights with a {'int8' if int8_src else 'float'} input"
        )
    if q is not None:
        return src.dtype, dnnl.DT_S8, ONNX_TO_DNNL[q.y_type]
    if b.runs_bf16(node):
        return dnnl.DT_BF16, dnnl.DT_BF16, dnnl.DT_BF16 if b.bf16_output(node) else dnnl.DT_F32
    return dnnl.DT_F32, dnnl.DT_F32, dnnl.DT_F32


# The integer range of an INT8 destination, which oneDNN saturates to after rounding.
_INT8_RANGES = {ops.UINT8: (0, 255), ops.INT8: (-128, 127)}
# How far inside the integer range a clip bound may sit and still be implied: a value within half a step
# of the edge rounds onto it; the other 0.1 absorbs oneDNN computing v / y_scale in fp32.
_SATURATION_MARGIN = 0.4


def without_implied_saturation(chain: list[ops.PostOp], q: Quant | None) -> list[ops.PostOp]:
    """The chain without trailing ReLU / Clip steps the INT8 destination's saturation already applies.

    oneDNN writes sat(round(v / y_scale) + y_zero_point); a final clip(v, lo, hi) changes nothing when
    lo and hi land at or beyond the integer range (a ReLU into u8 with zero point 0; ReLU6 into u8 whose
    scale is 6 / 255 or finer). Each eltwise post-op is another pass over the dst vector in oneDNN's
    kernel, 5-15 % of a memory-bound depthwise or 1x1 conv, so an exact no-op is not kept.
    """
    if q is None or q.y_type not in _INT8_RANGES or q.y_scale is None:
        return chain
    qmin, qmax = _INT8_RANGES[q.y_type]
    chain = list(chain)
    while chain and chain[-1].kind in ("relu", "clip"):
        last = chain[-1]
        if last.kind == "relu":
            if last.params and last.params[0] != 0.0:  # a leaky slope is not a clip
                break
            lo, hi = 0.0, np.inf
        else:
            _, lo, hi = eltwise_params("clip", last.params)
        lo_q, hi_q = lo / q.y_scale + q.y_zero_point, hi / q.y_scale + q.y_zero_point
        if lo_q > qmin + _SATURATION_MARGIN or hi_q < qmax - _SATURATION_MARGIN:
            break
        chain.pop()
    return chain


def _post_ops_and_dst(
    b: Builder, node: ir.Node, dst_dims: tuple[int, ...], q: Quant | None, on_float: Quant | None = None
) -> tuple[dnnl.PostOps, Tensor | None, float, int]:
    """Post-op chain; the residual tensor (if any) with the scale and type its sum post-op needs.
    `on_float` is the Quant of an INT8 node run on f32 kernels: its int8 residual is dequantized first."""
    chain = ops.decode_post_ops(list(node.attributes["post_ops"].as_strings()) if "post_ops" in node.attributes else [])
    chain = without_implied_saturation(chain, q)
    post_ops = dnnl.PostOps()
    residual = None
    sum_scale, sum_dtype = 1.0, dnnl.DT_UNDEF
    for op in chain:
        if op.kind == "sum":
            if len(node.inputs) < 4 or node.inputs[3] is None:
                raise UnsupportedOpError(f"node {node.name!r}: post-op 'sum' without a Sum input")
            residual = b.input(node, 3)
            if on_float is not None and residual.dtype in (dnnl.DT_U8, dnnl.DT_S8):
                residual = _dequantized(b, residual, on_float.sum_scale, on_float.sum_zero_point, node, "residual")
            same_rows = node.op_type == "Dense" and np.prod(residual.dims) == np.prod(dst_dims)  # a MatMul's
            if tuple(residual.dims) != tuple(dst_dims) and not same_rows:
                raise UnsupportedOpError(
                    f"node {node.name!r}: Sum input shape {residual.dims} differs from output shape {dst_dims}"
                )
            sum_zero_point = q.sum_zero_point if q is not None else 0
            if residual.dtype in (dnnl.DT_U8, dnnl.DT_S8):
                if q is None or q.sum_scale is None:
                    raise UnsupportedOpError(f"node {node.name!r}: int8 Sum input needs a sum_scale attribute")
                if q.y_type == ops.FLOAT:  # dequantized into the float dst first (_dst_for_sum), added as is
                    sum_zero_point = 0
                else:
                    sum_scale, sum_dtype = q.sum_scale, residual.dtype
            post_ops.append_sum(sum_scale, sum_dtype, sum_zero_point)
        elif op.kind == "fq":
            append_fake_quant(post_ops, *op.params)
        else:
            post_ops.append_eltwise(*eltwise_params(op.kind, op.params))
    return post_ops, residual, sum_scale, sum_dtype


def _dst_for_sum(
    b: Builder, node: ir.Node, residual: Tensor, dst_md: dnnl.MemoryDesc, q: Quant | None, src: Tensor
) -> Tensor:
    """The conv's dst, holding the residual before the conv runs (in place when it is safe: never over the
    conv's own source, which it still reads while writing)."""
    same_bytes = residual.md == dst_md or (residual.md.size == dst_md.size and residual.md.like(dst_md.dtype) == dst_md)
    aliases_src = residual.storage is src.storage
    if same_bytes and b.is_last_use(node, 3) and not residual.storage.external and not aliases_src:
        return b.view(residual, dst_md)
    dst = b.new_tensor(dst_md)
    if residual.dtype in (dnnl.DT_U8, dnnl.DT_S8) and dst_md.dtype in (dnnl.DT_U8, dnnl.DT_S8):
        # The sum post-op reads the copied residual with the residual's own scale and type.
        b.reorder(residual, b.view(dst, dst_md.like(residual.dtype)), label=f"residual for {node.name}")
    elif residual.dtype in (dnnl.DT_U8, dnnl.DT_S8):
        # A float output (NFNet's downsampling conv feeding a float op): oneDNN's sum post-op needs a data
        # type of the dst's size, so the residual is dequantized into the dst, exactly as the file's
        # DequantizeLinear does, and added as it is.
        b.reorder(
            residual,
            dst,
            label=f"residual for {node.name}",
            src_scale=q.sum_scale,
            src_zero_point=q.sum_zero_point,
        )
    else:
        b.reorder(residual, dst, label=f"residual for {node.name}")
    return dst


def _onto_float_kernels(
    b: Builder, node: ir.Node, src: Tensor, w: np.ndarray, q: Quant | None
) -> tuple[Tensor, np.ndarray, Quant | None, Quant | None]:
    """(source, weights, Quant, on_float): unchanged, or for an INT8 node on a CPU where oneDNN's int8
    kernels saturate, the dequantized source and weights with no Quant, and the node's Quant as on_float."""
    if q is None or precision.int8_kernels_exact():
        return src, w, q, None
    _data_types(b, node, q, src)  # the checks the int8 kernels would make
    return _dequantized(b, src, q.x_scale, q.x_zero_point, node, "input"), _dequantized_weights(w, q), None, q


def _dequantized(b: Builder, t: Tensor, scale: float | None, zero_point: int, node: ir.Node, what: str) -> Tensor:
    """scale * (q - zero_point) in f32, as the file's DequantizeLinear computes it."""
    if scale is None:
        raise UnsupportedOpError(f"node {node.name!r}: int8 {what} needs a scale attribute")
    out = b.new_tensor(t.md.like(dnnl.DT_F32))
    b.reorder(t, out, f"{what} of {node.name} (dequantized)", src_scale=scale, src_zero_point=zero_point)
    return out


def _dequantized_weights(w: np.ndarray, q: Quant) -> np.ndarray:
    """w_int8 * w_scale per output channel (axis 0), in f32."""
    scales = q.w_scales.reshape((-1,) + (1,) * (w.ndim - 1))
    return (w.astype(np.float32) * scales).astype(np.float32)


def _quantize_output(b: Builder, node: ir.Node, q: Quant, channels_last: bool = False) -> None:
    """Replaces the node's f32 output with its INT8 encoding (y_scale, y_zero_point), as QuantizeLinear does;
    channels_last writes a 4-D one in nhwc, the layout INT8 kernels and their INT8 readers work in."""
    if q.y_type == ops.FLOAT:
        return
    result = b.values[node.outputs[0].name]
    dtype = ONNX_TO_DNNL[q.y_type]
    nhwc = channels_last and len(result.dims) == 4
    out = b.new_tensor(_md(result.dims, dtype, dnnl.TAG_ACDB) if nhwc else result.md.like(dtype))
    b.reorder(result, out, f"{node.name} output", dst_scale=q.y_scale, dst_zero_point=q.y_zero_point)
    b.set_output(node, out)


def _scale_args(
    b: Builder, q: Quant | None, weights_mask: int, zero_points: bool = True
) -> tuple[dict[int, int], dict[int, int], list]:
    """Scale masks, zero-point masks and their runtime arguments (zero points only where asked)."""
    if q is None:
        return {}, {}, []
    masks = {dnnl.ARG_SRC: 0, dnnl.ARG_WEIGHTS: weights_mask}
    args = [
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_SRC, b.scales([q.x_scale])),
        (dnnl.ARG_ATTR_SCALES | dnnl.ARG_WEIGHTS, b.scales(q.w_scales)),
    ]
    if q.y_type != ops.FLOAT:
        masks[dnnl.ARG_DST] = 0
        args.append((dnnl.ARG_ATTR_SCALES | dnnl.ARG_DST, b.scales([q.y_scale])))
    zps = {}
    if zero_points:
        for arg, zp in ((dnnl.ARG_SRC, q.x_zero_point), (dnnl.ARG_DST, q.y_zero_point)):
            if zp:
                zps[arg] = 0
                args.append((dnnl.ARG_ATTR_ZERO_POINTS | arg, b.zero_points([zp])))
    return masks, zps, args


def _bias(b: Builder, node: ir.Node, channels: int):
    if len(node.inputs) < 3 or node.inputs[2] is None:
        return None
    bias = b.constant_array(node, 2)
    if bias is None:
        raise UnsupportedOpError(f"node {node.name!r}: bias must be a constant initializer")
    return b.const(bias.astype(np.float32).reshape(channels))


def _finish(b: Builder, node, pd, src, weights_const, bias, residual, q, scale_args, dst_md):
    src_t = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
    dst = _dst_for_sum(b, node, residual, dst_md, q, src_t) if residual is not None else b.new_tensor(dst_md)
    args = [(dnnl.ARG_SRC, src_t), (dnnl.ARG_WEIGHTS, weights_const), (dnnl.ARG_DST, dst)]
    if bias is not None:
        args.append((dnnl.ARG_BIAS, bias))
    b.add_step(pd, args + scale_args, node.name)
    b.set_output(node, dst)


def _act_layouts(
    src_dims: tuple[int, ...],
    dst_dims: tuple[int, ...],
    dtype: int,
    arrives: dnnl.MemoryDesc | None = None,
    policy: str = layouts.BLOCKED,
) -> list[tuple[int, int]]:
    """(src, dst) layout tags to ask for a convolution's activations, in order of preference.

    FP32 with channels in multiples of 16 first tries oneDNN's blocked nChw16c: with `any`, oneDNN 3.2
    picks nhwc brgconv kernels, which measured 20% slower on MobileNetV2 and 6% on ResNet-50 here than
    the blocked jit_1x1/jit_dw ones. INT8 starts from `any` (its nhwc int8 kernels are the fast ones).
    Where a choice has only a reference kernel (grouped convolutions in nChw16c), the next is used.
    A float input that arrives in nhwc (from an INT8 neighbour, whose kernels write nhwc) keeps nhwc:
    reordering a mixed-precision border into nChw16c and back costs more than the blocked kernels save.
    bf16 asks for nhwc first: its brgconv kernels (AMX too) are nhwc, and `any` would put grouped and
    3-channel convolutions in blocked layouts, with a reorder on each side; their nhwc kernels exist.
    The other FP32 policies (runtime.layouts) trade kernels for reorders: KEEP_ARRIVAL keeps a blocked
    input blocked (padded channels included), CHANNELS_LAST asks nhwc everywhere.
    """
    tags = [(dnnl.TAG_ANY, dnnl.TAG_ANY), (dnnl.TAG_ACDB, dnnl.TAG_ACDB), (dnnl.TAG_ABCD, dnnl.TAG_ABCD)]
    if dtype == dnnl.DT_BF16 or (dtype == dnnl.DT_F32 and policy == layouts.CHANNELS_LAST):
        return [(dnnl.TAG_ACDB, dnnl.TAG_ACDB), *tags]
    if dtype != dnnl.DT_F32:
        return tags
    if arrives is not None and arrives == _md(src_dims, arrives.dtype, dnnl.TAG_ACDB) and src_dims[1] > 1:
        return [(dnnl.TAG_ACDB, dnnl.TAG_ACDB), *tags]
    keep = policy == layouts.KEEP_ARRIVAL and arrives is not None and src_dims[1] > 1
    if keep and arrives == _md(src_dims, arrives.dtype, dnnl.TAG_ABCD16B):
        return [(dnnl.TAG_ABCD16B, dnnl.TAG_ABCD16B if dst_dims[1] % 16 == 0 else dnnl.TAG_ANY), *tags]
    if src_dims[1] % 16 == 0 or dst_dims[1] % 16 == 0:
        tags.insert(0, tuple(dnnl.TAG_ABCD16B if d[1] % 16 == 0 else dnnl.TAG_ANY for d in (src_dims, dst_dims)))
    return tags


def _from_int8(node: ir.Node) -> bool:
    """Whether a node's input 0 comes across an INT8 -> float border (a dequantize, or an INT8 op writing float)."""
    producer = node.inputs[0].producer() if node.inputs[0] is not None else None
    return producer is not None and (producer.op_type == "DequantizeLinear" or "x_scale" in producer.attributes)


def _md(dims: tuple[int, ...], dtype: int, tag: int) -> dnnl.MemoryDesc:
    return dnnl.MemoryDesc.with_tag(dims, dtype, tag)


@lowering("Conv", domain=ops.DOMAIN)
def conv(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    w = _weights(b, node)
    q = Quant.of(node, w)
    if len(src.dims) != 4 or w.ndim != 4:
        raise UnsupportedOpError(f"node {node.name!r}: only 2-D convolutions (4-D tensors) are supported")
    n, c, h, wd = src.dims
    oc, icg, kh, kw = w.shape
    group = node.attributes.get_int("group", 1)
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    dil = list(node.attributes.get_ints("dilations", [1, 1]))
    pads = list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    extra = b.conv_pads.get(node.inputs[0].name)
    if extra is not None:  # a zero Pad in front, whose amounts only compiling knew (timm's TF-style padding)
        pads = [p + e for p, e in zip(pads, extra, strict=True)]
    if icg * group != c:
        raise UnsupportedOpError(
            f"node {node.name!r}: input has {c} channels but weights expect {icg} x {group} groups"
        )
    oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) // strides[1] + 1
    dst_dims = (n, oc, oh, ow)
    w_dims = (group, oc // group, icg, kh, kw) if group > 1 else (oc, icg, kh, kw)
    src, w, q, on_float = _onto_float_kernels(b, node, src, w, q)
    src_dt, w_dt, dst_dt = _data_types(b, node, q, src)
    post_ops, residual, _, _ = _post_ops_and_dst(b, node, dst_dims, q, on_float)
    masks, zps, scale_args = _scale_args(b, q, 0b11 if group > 1 else 0b1)
    bias = _bias(b, node, oc)
    attr = dnnl.Attr(masks, post_ops, zps)

    def choose(src: Tensor, w_dims: tuple[int, ...], strides: list[int], pads: list[int]) -> dnnl.PrimitiveDesc:
        return b.first_fast(
            node.name,
            [
                lambda st=st, dt=dt: dnnl.convolution_pd(
                    _md(src.dims, src_dt, st),
                    dnnl.MemoryDesc.any(w_dims, w_dt),
                    bias.memory.md if bias else None,
                    _md(dst_dims, dst_dt, dt),
                    strides,
                    [d - 1 for d in dil],
                    pads[:2],
                    pads[2:],
                    attr,
                )
                for st, dt in _act_layouts(
                    src.dims,
                    dst_dims,
                    src_dt,
                    src.md if _from_int8(node) or b.layout_policy == layouts.KEEP_ARRIVAL else None,
                    b.layout_policy,
                )
            ],
        )

    pd = choose(src, w_dims, strides, pads)
    w_key = node.inputs[1].name
    if q is not None and _amx_patch_bug(pd, group, (kh, kw), strides, dil, pads):
        src = _space_to_depth(b, src, src_dt, (kh, kw), node.name)
        w, w_dims, w_key = w.reshape(oc, icg * kh * kw, 1, 1), (oc, icg * kh * kw, 1, 1), f"{w_key}/space_to_depth"
        pd = choose(src, w_dims, [1, 1], [0, 0, 0, 0])
    w_const = b.reordered_const(w_key, w, w_dims, pd.md(dnnl.QUERY_WEIGHTS_MD))
    _finish(b, node, pd, src, w_const, bias, residual, q, scale_args, pd.md(dnnl.QUERY_DST_MD))
    if on_float is not None:
        _quantize_output(b, node, on_float, channels_last=True)


def _amx_patch_bug(pd: dnnl.PrimitiveDesc, group: int, kernel, strides, dil, pads) -> bool:
    """Whether oneDNN 3.2's AMX brgconv would compute this convolution wrongly: non-overlapping patches
    (kernel == stride > 1, no padding or dilation; ConvNeXt's and FasterNet's downsampling, patch embeddings).

    Seen here, int8 on an AMX Xeon: a 2x2 stride-2 conv is wrong for 96, 160, 224, 288 input channels, a 4x4
    stride-4 one for 144-304 of them (most outputs off by up to the whole range); VNNI kernels, bf16 and every
    overlapping conv are right. Such a conv is the same as a 1x1 conv of its space-to-depth rearrangement,
    which AMX's 1x1 kernel computes right, so that is what runs instead (one reorder of the input)."""
    impl = pd.impl_info()
    patches = list(kernel) == list(strides) and max(kernel) > 1
    return "amx" in impl and "1x1" not in impl and group == 1 and patches and dil == [1, 1] and not any(pads)


def _space_to_depth(b: Builder, src: Tensor, dtype: int, kernel: tuple[int, int], label: str) -> Tensor:
    """[N, C, H, W] -> [N, C*kh*kw, H/kh, W/kw] (channel c*kh*kw + i*kw + j holds pixel (i, j) of each patch),
    in nhwc, by one reorder between two strided views: the 1x1-conv form of a kernel == stride conv."""
    n, c, h, w = src.dims
    kh, kw = kernel
    oh, ow = h // kh, w // kw
    nhwc = b.as_md(src, _md(src.dims, dtype, dnnl.TAG_ACDB), label)
    patches = (n, c, kh, kw, oh, ow)
    read = dnnl.MemoryDesc.with_strides(patches, dtype, (h * w * c, 1, w * c, c, kh * w * c, kw * c))
    depth = c * kh * kw
    out = b.new_tensor(_md((n, depth, oh, ow), dtype, dnnl.TAG_ACDB))
    write = dnnl.MemoryDesc.with_strides(patches, dtype, (oh * ow * depth, kh * kw, kw, 1, ow * depth, depth))
    b.reorder(b.view(nhwc, read), b.view(out, write), label=f"space-to-depth for {label}")
    return out


@lowering("Dense", domain=ops.DOMAIN)
def dense(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    w = _weights(b, node)
    q = Quant.of(node, w)
    if w.ndim != 2:
        raise UnsupportedOpError(f"node {node.name!r}: Dense weights must be 2-D [M, K], got {w.shape}")
    m, k = w.shape
    axis = node.attributes.get_int("axis", 1)
    lead = tuple(src.dims[:axis])  # the rows: [N] for Gemm, every axis but the last for a MatMul
    n = int(np.prod(lead))
    if int(np.prod(src.dims[axis:])) != k:
        raise UnsupportedOpError(f"node {node.name!r}: input {src.dims} does not flatten to {k} features")
    if len(src.dims) != 2:
        src = b.view(b.as_plain(src, node.name), dnnl.MemoryDesc.plain((n, k), src.dtype))
    dst_dims = (n, m)
    src, w, q, on_float = _onto_float_kernels(b, node, src, w, q)
    # oneDNN's inner product has no zero points: a source zero point is exact as a bias term
    # (no padding), a destination one as a float result quantized by a reorder.
    float_then_quantize = q is not None and q.y_type != ops.FLOAT and q.y_zero_point != 0
    kernel_q = q
    if float_then_quantize:
        kernel_q = Quant(q.x_scale, q.w_scales, None, ops.FLOAT, q.sum_scale, q.x_zero_point, 0, q.sum_zero_point)
    src_dt, w_dt, dst_dt = _data_types(b, node, q, src)
    if float_then_quantize:
        dst_dt = dnnl.DT_F32
    post_ops, residual, _, _ = _post_ops_and_dst(b, node, dst_dims, kernel_q, on_float)
    if residual is not None and residual.dims != dst_dims:
        residual = b.view(b.as_plain(residual, node.name), dnnl.MemoryDesc.plain(dst_dims, residual.dtype))
    masks, _, scale_args = _scale_args(b, kernel_q, 0b1, zero_points=False)
    bias = _dense_bias(b, node, m, w, q)
    pd = dnnl.inner_product_pd(
        dnnl.MemoryDesc.any((n, k), src_dt),
        dnnl.MemoryDesc.any((m, k), w_dt),
        bias.memory.md if bias else None,
        dnnl.MemoryDesc.any(dst_dims, dst_dt),
        dnnl.Attr(masks, post_ops),
    )
    w_const = b.reordered_const(node.inputs[1].name, w, (m, k), pd.md(dnnl.QUERY_WEIGHTS_MD))
    _finish(b, node, pd, src, w_const, bias, residual, kernel_q, scale_args, pd.md(dnnl.QUERY_DST_MD))
    if float_then_quantize or on_float is not None:
        _quantize_output(b, node, on_float or q)
    if len(lead) != 1:
        result = b.as_plain(b.values[node.outputs[0].name], node.name)
        b.set_output(node, b.view(result, dnnl.MemoryDesc.plain((*lead, m), result.dtype)))


def _dense_bias(b: Builder, node: ir.Node, m: int, w: np.ndarray, q: Quant | None):
    """The bias, with a source zero point folded in: acc(x - zp) = acc(x) - zp * sum_k W[m, k]."""
    if q is None or not q.x_zero_point:
        return _bias(b, node, m)
    bias = b.constant_array(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    base = np.zeros(m, np.float64) if bias is None else bias.astype(np.float64).reshape(m)
    row_sums = w.astype(np.int64).reshape(m, -1).sum(axis=1)
    folded = base - float(q.x_scale) * q.w_scales.astype(np.float64) * q.x_zero_point * row_sums
    return b.const(folded.astype(np.float32))
