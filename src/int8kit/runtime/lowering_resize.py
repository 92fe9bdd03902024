"""Resize (and torch's F.interpolate): oneDNN's resampling, only where it computes what the ONNX node says.

oneDNN 3.2 maps an output position o of an axis resized from I to O to the source coordinate
(o + 0.5) * I / O - 0.5 (factors from the dims), taking the nearest index or interpolating linearly with
edge clamping. ONNX spells the coordinate per `coordinate_transformation_mode` and the rounding per
`nearest_mode`, with its own scale. Rather than trust a table of which combinations agree, the lowering
computes both index maps exactly (rational arithmetic) for the shapes being compiled and uses oneDNN
only where they are identical; otherwise the node is refused, naming it and its mode (never a resize
that is off by a pixel). That covers what exporters write for classifiers: nearest upsampling by integer
factors in every torch/TF mode, and (bi)linear with half_pixel / pytorch_half_pixel.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl
from int8kit.runtime.compile import Builder, layout_variants, with_layout_of
from int8kit.runtime.host_eval import evaluate
from int8kit.runtime.registry import lowering

MODES = {"nearest": dnnl.RESAMPLING_NEAREST, "linear": dnnl.RESAMPLING_LINEAR}


def _onnx_coordinate(o: int, size_in: int, size_out: int, scale: Fraction, mode: str) -> Fraction | None:
    """The source coordinate ONNX gives output position o (None for a mode oneDNN never matches)."""
    half = Fraction(1, 2)
    if mode == "half_pixel" or (mode == "pytorch_half_pixel" and size_out > 1):
        return (o + half) / scale - half
    if mode == "pytorch_half_pixel":
        return Fraction(0)
    if mode == "asymmetric":
        return o / scale
    if mode == "align_corners":
        return Fraction(0) if size_out == 1 else Fraction(o * (size_in - 1), size_out - 1)
    return None  # tf_crop_and_resize, half_pixel_symmetric


def _nearest(c: Fraction, rounding: str) -> int:
    floor = math.floor(c)
    if rounding == "floor":
        return floor
    if rounding == "ceil":
        return math.ceil(c)
    frac = c - floor
    if frac == Fraction(1, 2):
        return floor if rounding == "round_prefer_floor" else floor + 1
    return floor + (frac > Fraction(1, 2))


def _clamp(c, size_in: int):
    return min(max(c, 0), size_in - 1)


def axis_agrees(size_in: int, size_out: int, scale: Fraction, node: ir.Node, mode: str) -> bool:
    """Whether oneDNN's map of this axis is exactly ONNX's: every nearest index, or every linear coordinate."""
    transform = node.attributes.get_string("coordinate_transformation_mode", "half_pixel")
    rounding = node.attributes.get_string("nearest_mode", "round_prefer_floor")
    for o in range(size_out):
        ours = Fraction(2 * o + 1, 2) * Fraction(size_in, size_out) - Fraction(1, 2)
        theirs = _onnx_coordinate(o, size_in, size_out, scale, transform)
        if theirs is None:
            return False
        if mode == "linear":
            if _clamp(ours, size_in) != _clamp(theirs, size_in):
                return False
        elif ours - math.floor(ours) == Fraction(1, 2):
            return False  # a tie: oneDNN's rounding of it is not specified
        elif _clamp(math.floor(ours + Fraction(1, 2)), size_in) != _clamp(_nearest(theirs, rounding), size_in):
            return False
    return True


def _scales_and_sizes(b: Builder, node: ir.Node, dims: tuple[int, ...]) -> tuple[list[Fraction], list[int]]:
    """Per axis: the scale ONNX computes coordinates with, and the output size."""
    rank = len(dims)
    axes = [a % rank for a in node.attributes.get_ints("axes", list(range(rank)))]
    scales = b.constant_array(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    sizes = b.constant_array(node, 3) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    if scales is not None and scales.size == 0:
        scales = None
    if (scales is None) == (sizes is None or sizes.size == 0):
        raise UnsupportedOpError(f"node {node.name!r}: Resize needs exactly one of constant scales or sizes")
    full_scales, full_sizes = [Fraction(1)] * rank, list(dims)
    if scales is not None:
        for axis, s in zip(axes, scales.reshape(-1).tolist(), strict=True):
            full_scales[axis] = Fraction(float(np.float32(s)))
            full_sizes[axis] = math.floor(dims[axis] * full_scales[axis])
    else:
        policy = node.attributes.get_string("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            raise UnsupportedOpError(f"node {node.name!r}: Resize keep_aspect_ratio_policy={policy!r} is not supported")
        for axis, size in zip(axes, sizes.reshape(-1).tolist(), strict=True):
            full_sizes[axis] = int(size)
            full_scales[axis] = Fraction(int(size), dims[axis])
    return full_scales, full_sizes


@lowering("Resize")
def resize(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    mode = node.attributes.get_string("mode", "nearest")
    if mode not in (*MODES, "cubic"):
        raise UnsupportedOpError(
            f"node {node.name!r}: Resize mode {mode!r} is not supported (nearest, linear, cubic are)"
        )
    scales, sizes = _scales_and_sizes(b, node, tuple(src.dims))
    if sizes[:2] != list(src.dims[:2]) or not 3 <= len(src.dims) <= 5:
        raise UnsupportedOpError(
            f"node {node.name!r}: Resize of {list(src.dims)} to {sizes}: only the 1-3 spatial axes of "
            "[N, C, ...] can be resized"
        )
    dst_dims = tuple(sizes)
    if dst_dims == tuple(src.dims) and all(s == 1 for s in scales):
        b.set_output(node, src)
        return
    antialiased = node.attributes.get_int("antialias", 0) and any(s < 1 for s in scales)
    disagreeing = [a for a in range(2, len(sizes)) if not axis_agrees(src.dims[a], sizes[a], scales[a], node, mode)]
    if mode in MODES and not antialiased and not disagreeing:
        pd = b.first_fast(
            node.name,
            [
                lambda md=md: dnnl.resampling_pd(MODES[mode], md, with_layout_of(dst_dims, src.dtype, md), dnnl.Attr())
                for md in layout_variants(src.md)
            ],
        )
        src_t = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
        dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
        b.add_step(pd, [(dnnl.ARG_SRC, src_t), (dnnl.ARG_DST, dst)], node.name)
        b.set_output(node, dst)
        return
    why = _no_matrices(node, src)
    if why:
        axis = disagreeing[0] if disagreeing else 2
        transform = node.attributes.get_string("coordinate_transformation_mode", "half_pixel")
        raise UnsupportedOpError(
            f"node {node.name!r}: Resize {mode} ({transform}) of axis {axis} from {src.dims[axis]} to "
            f"{sizes[axis]} at scale {float(scales[axis]):g} is not supported: oneDNN's resampling does not "
            f"compute it, and {why}"
        )
    _resize_by_matrices(b, node, src, scales, sizes)


def _no_matrices(node: ir.Node, src) -> str | None:
    """Why the node cannot run as per-axis interpolation matrices (None when it can)."""
    if src.dtype != dnnl.DT_F32:
        return "an interpolation matrix needs float data"
    if len(src.dims) not in (3, 4):
        return "interpolation matrices cover one or two spatial axes"
    if node.attributes.get_string("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize":
        return "tf_crop_and_resize is not separable into per-axis matrices here"
    if "axes" in node.attributes or len(node.inputs) < 3:
        return "interpolation matrices need the opset 11-17 form (scales or sizes for every axis)"
    return None


def _axis_matrix(b: Builder, node: ir.Node, axis: int, size_in: int, size_out: int) -> np.ndarray:
    """[size_out, size_in]: the node's interpolation along one axis, as onnx's reference Resize computes it
    for each unit vector (every mode, transform, cubic coefficient and antialias exactly as the spec has
    them: Resize is linear and separable per axis, and identity along an axis at scale 1)."""
    basis = np.eye(size_in, dtype=np.float32).reshape(size_in, 1, size_in, 1)
    scales = b.constant_array(node, 2) if node.inputs[2] is not None else None
    if scales is not None and scales.size:
        inputs = [basis, None, np.array([1, 1, np.float32(scales.reshape(-1)[axis]), 1], np.float32)]
    else:
        inputs = [basis, None, None, np.array([size_in, 1, size_out, 1], np.int64)]
    out = evaluate(node, inputs, b.opset)[0]
    if out.shape != (size_in, 1, size_out, 1):
        raise UnsupportedOpError(
            f"node {node.name!r}: Resize of axis {axis} gave {out.shape[2]} positions, not {size_out}"
        )
    return np.ascontiguousarray(out[:, 0, :, 0].T)


def _resize_by_matrices(b: Builder, node: ir.Node, src, scales: list[Fraction], sizes: list[int]) -> None:
    """Resize oneDNN's resampling does not compute (cubic, align_corners, fractional nearest, antialias):
    out = A_h . x . A_w^T per image and channel, as one or two oneDNN matmuls with constant matrices."""
    plain = b.as_plain(src, node.name)
    dims = list(plain.dims)
    lead = int(np.prod(dims[:-1]))
    last = len(dims) - 1
    cur = plain
    if sizes[last] != dims[last] or scales[last] != 1:  # the innermost axis: x [lead, W] @ A_w^T [W, OW]
        a_t = b.const(_axis_matrix(b, node, last, dims[last], sizes[last]).T.copy())
        x = b.view(cur, dnnl.MemoryDesc.plain((lead, dims[last]), dnnl.DT_F32))
        cur = b.new_tensor(dnnl.MemoryDesc.plain((lead, sizes[last]), dnnl.DT_F32))
        pd = dnnl.matmul_pd(x.md, a_t.memory.md, None, cur.md, dnnl.Attr())
        b.add_step(pd, [(dnnl.ARG_SRC, x), (dnnl.ARG_WEIGHTS, a_t), (dnnl.ARG_DST, cur)], f"{node.name} (axis {last})")
        dims[last] = sizes[last]
    if len(dims) == 4 and (sizes[2] != dims[2] or scales[2] != 1):  # H: A_h [1, OH, H] @ x [N*C, H, OW]
        a = b.const(_axis_matrix(b, node, 2, dims[2], sizes[2])[None])
        x = b.view(cur, dnnl.MemoryDesc.plain((dims[0] * dims[1], dims[2], dims[3]), dnnl.DT_F32))
        cur = b.new_tensor(dnnl.MemoryDesc.plain((dims[0] * dims[1], sizes[2], dims[3]), dnnl.DT_F32))
        pd = dnnl.matmul_pd(a.memory.md, x.md, None, cur.md, dnnl.Attr())
        b.add_step(pd, [(dnnl.ARG_SRC, a), (dnnl.ARG_WEIGHTS, x), (dnnl.ARG_DST, cur)], f"{node.name} (axis 2)")
        dims[2] = sizes[2]
    b.set_output(node, b.view(cur, dnnl.MemoryDesc.plain(tuple(dims), dnnl.DT_F32)))
