"""Lowerings of data-movement ops: Flatten, Reshape, Squeeze, Unsqueeze, Identity, Transpose, DepthToSpace,
SpaceToDepth, Concat, Pad.

Shape-only ops are views over a plain copy of their input (free when it is plain already);
Transpose is one reorder, and so are DepthToSpace and SpaceToDepth (the ONNX spec defines each as a
reshape, a transpose and a reshape: views around one permuting reorder); Concat is oneDNN's concat in the
layout its inputs already have.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl
from int8kit.runtime.compile import DNNL_TO_NUMPY, Builder, Const, Tensor, layout_variants, with_layout_of
from int8kit.runtime.registry import lowering


def _reshaped(b: Builder, node: ir.Node, dims: tuple[int, ...]) -> None:
    src = b.input(node, 0)
    if math.prod(dims) != math.prod(src.dims):
        raise UnsupportedOpError(f"node {node.name!r}: cannot reshape {src.dims} to {dims}")
    if not src.md.is_plain() and not src.md.is_blocked():
        # A strided layout (nhwc from an INT8 conv) reshapes in place when the dims it splits or merges are
        # dense in memory (a channel shuffle's split of C): a view, not a copy into nchw and back.
        try:
            b.set_output(node, b.view(src, src.md.reshape(dims)))
            return
        except dnnl.DnnlError:
            pass
    plain = b.as_plain(src, node.name)
    b.set_output(node, b.view(plain, dnnl.MemoryDesc.plain(dims, src.dtype)))


@lowering("Flatten")
def flatten(b: Builder, node: ir.Node) -> None:
    dims = b.input(node, 0).dims
    axis = node.attributes.get_int("axis", 1)
    axis += len(dims) if axis < 0 else 0  # ONNX: a negative axis counts from rank, in [-r, r]
    _reshaped(b, node, (math.prod(dims[:axis]), math.prod(dims[axis:])))


@lowering("Reshape")
def reshape(b: Builder, node: ir.Node) -> None:
    src_dims = b.input(node, 0).dims
    shape = b.constant_array(node, 1)
    if shape is None:
        raise UnsupportedOpError(f"node {node.name!r}: Reshape needs a constant shape")
    dims = [int(s) for s in shape.reshape(-1)]
    if not node.attributes.get_int("allowzero", 0):
        dims = [src_dims[i] if d == 0 else d for i, d in enumerate(dims)]
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        dims[dims.index(-1)] = math.prod(src_dims) // max(known, 1)
    _reshaped(b, node, tuple(dims))


def _axes(b: Builder, node: ir.Node, rank: int) -> list[int]:
    axes = b.constant_array(node, 1)
    values = [int(a) for a in axes.reshape(-1)] if axes is not None else list(node.attributes.get_ints("axes", []))
    return sorted(a % rank for a in values)


@lowering("Squeeze")
def squeeze(b: Builder, node: ir.Node) -> None:
    dims = b.input(node, 0).dims
    axes = _axes(b, node, len(dims)) or [i for i, d in enumerate(dims) if d == 1]
    _reshaped(b, node, tuple(d for i, d in enumerate(dims) if i not in axes))


@lowering("Unsqueeze")
def unsqueeze(b: Builder, node: ir.Node) -> None:
    dims = list(b.input(node, 0).dims)
    axes = b.constant_array(node, 1)
    raw = [int(a) for a in axes.reshape(-1)] if axes is not None else list(node.attributes.get_ints("axes", []))
    rank = len(dims) + len(raw)
    for a in sorted(x % rank for x in raw):
        dims.insert(a, 1)
    _reshaped(b, node, tuple(dims))


@lowering("Expand")
def expand(b: Builder, node: ir.Node) -> None:
    """Expand of run-time data (timm's `gate.expand_as(x)`; Expand of shapes and constants folds on the host):
    one reorder from a view of the input whose broadcast axes have stride 0, into a plain tensor."""
    src = b.input(node, 0)
    shape = b.constant_array(node, 1)
    if shape is None:
        raise UnsupportedOpError(f"node {node.name!r}: Expand needs a shape known when the model is compiled")
    try:
        dims = tuple(int(d) for d in np.broadcast_shapes(tuple(src.dims), tuple(int(d) for d in shape.reshape(-1))))
    except ValueError:
        raise UnsupportedOpError(
            f"node {node.name!r}: Expand of {list(src.dims)} to {shape.reshape(-1).tolist()}: shapes do not broadcast"
        ) from None
    b.set_output(node, broadcast_to(b, src, dims, node.name))


@lowering("Tile")
def tile(b: Builder, node: ir.Node) -> None:
    """Tile of run-time data (XCiT's positional encoding repeated per image; Tile of shapes folds on the host):
    one broadcast (a stride-0 view and a reorder) of the input spread over [1, d0, 1, d1, ...]."""
    src = b.input(node, 0)
    repeats = b.constant_array(node, 1)
    if repeats is None:
        raise UnsupportedOpError(f"node {node.name!r}: Tile needs repeats known when the model is compiled")
    repeats = [int(r) for r in repeats.reshape(-1)]
    if len(repeats) != len(src.dims) or min(repeats) < 1:
        raise UnsupportedOpError(f"node {node.name!r}: Tile of {list(src.dims)} by {repeats}")
    out_dims = tuple(d * r for d, r in zip(src.dims, repeats, strict=True))
    if out_dims == tuple(src.dims):
        b.set_output(node, src)
        return
    # [d0, d1, ...] viewed as [1, d0, 1, d1, ...] and broadcast to [r0, d0, r1, d1, ...], whose bytes are the output
    spread = dnnl.MemoryDesc.plain(tuple(x for d in src.dims for x in (1, d)), src.dtype)
    pairs = tuple(x for r, d in zip(repeats, src.dims, strict=True) for x in (r, d))
    tiled = broadcast_to(b, b.view(b.as_plain(src, node.name), spread), pairs, node.name)
    b.set_output(node, b.view(tiled, dnnl.MemoryDesc.plain(out_dims, src.dtype)))


def broadcast_to(b: Builder, src: Tensor, dims: tuple[int, ...], label: str) -> Tensor:
    """`src` broadcast to `dims` as a plain tensor of its own (itself when it has those dims already)."""
    if tuple(dims) == tuple(src.dims):
        return src
    plain = b.as_plain(src, label)
    lead = (1,) * (len(dims) - len(src.dims)) + tuple(src.dims)
    dense = np.cumprod((1, *lead[::-1]))[:-1][::-1]  # the plain strides of `lead`
    strides = tuple(int(s) if d == full else 0 for s, d, full in zip(dense, lead, dims, strict=True))
    view = b.view(plain, dnnl.MemoryDesc.with_strides(dims, src.dtype, strides))
    dst = b.new_tensor(dnnl.MemoryDesc.plain(dims, src.dtype))
    b.reorder(view, dst, label)
    return dst


@lowering("Identity", "Dropout")
def identity(b: Builder, node: ir.Node) -> None:
    b.set_output(node, b.input(node, 0))


@lowering("Transpose")
def transpose(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    rank = len(src.dims)
    perm = list(node.attributes.get_ints("perm", list(reversed(range(rank)))))
    out_dims = tuple(src.dims[p] for p in perm)
    plain_src = src.md.is_plain() or src.md.is_blocked()
    dst_md = dnnl.MemoryDesc.plain(out_dims, src.dtype) if plain_src else _transposed_layout(src.md, perm, out_dims)
    dst = b.new_tensor(dst_md)
    # Describe the output buffer in the input's axis order: output axis k is input axis perm[k].
    dst_in_src_axes = b.view(dst, dst.md.permute_axes(perm))
    b.reorder(src, dst_in_src_axes, node.name)
    b.set_output(node, dst)


# ONNX's definitions: (the 6-d view of the input, the transpose of it) for blocksize b; the output is the
# transposed tensor read back as 4-d.
def _depth_to_space_dcr(n: int, c: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], list[int]]:
    return (n, k, k, c // (k * k), h, w), [0, 3, 4, 1, 5, 2]


def _depth_to_space_crd(n: int, c: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], list[int]]:
    return (n, c // (k * k), k, k, h, w), [0, 1, 4, 2, 5, 3]


def _space_to_depth(n: int, c: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], list[int]]:
    return (n, c, h // k, k, w // k, k), [0, 3, 5, 1, 2, 4]


@lowering("DepthToSpace", "SpaceToDepth")
def depth_space(b: Builder, node: ir.Node) -> None:
    """PixelShuffle (torch exports DepthToSpace, DCR or CRD) and SpaceToDepth (TResNet's stem, tf2onnx)."""
    src = b.input(node, 0)
    k = node.attributes.get_int("blocksize", 0)
    if len(src.dims) != 4 or k < 1:
        raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} of {list(src.dims)} with blocksize {k}")
    n, c, h, w = src.dims
    if node.op_type == "SpaceToDepth":
        if h % k or w % k:
            raise UnsupportedOpError(f"node {node.name!r}: SpaceToDepth of {h}x{w} by blocksize {k}")
        split, perm = _space_to_depth(n, c, h, w, k)
        out_dims = (n, c * k * k, h // k, w // k)
    else:
        if c % (k * k):
            raise UnsupportedOpError(f"node {node.name!r}: DepthToSpace of {c} channels by blocksize {k}")
        mode = node.attributes.get_string("mode", "DCR")
        if mode not in ("DCR", "CRD"):
            raise UnsupportedOpError(f"node {node.name!r}: DepthToSpace mode {mode!r}")
        split, perm = (_depth_to_space_dcr if mode == "DCR" else _depth_to_space_crd)(n, c, h, w, k)
        out_dims = (n, c // (k * k), h * k, w * k)
    view = b.view(b.as_plain(src, node.name), dnnl.MemoryDesc.plain(split, src.dtype))
    moved = permuted_copy(b, view, perm, node.name)
    b.set_output(node, b.view(moved, dnnl.MemoryDesc.plain(out_dims, src.dtype)))


def permuted_copy(b: Builder, src: Tensor, perm: list[int], label: str) -> Tensor:
    """`src` copied into a plain tensor of dims [src.dims[i] for i in perm], by one reorder."""
    moved = b.new_tensor(dnnl.MemoryDesc.plain(tuple(src.dims[i] for i in perm), src.dtype))
    b.reorder(src, b.view(moved, moved.md.permute_axes(perm)), label)
    return moved


def _transposed_layout(md: dnnl.MemoryDesc, perm: list[int], out_dims: tuple[int, ...]) -> dnnl.MemoryDesc:
    """The output layout of a Transpose of strided (not plain) data: the input's memory order, with each run
    of axes the transpose moves laid out in their new logical order.

    A channel shuffle of nhwc data, (N, g, C/g, H, W) -> (N, C/g, g, H, W), then stays channels-last
    with (C/g, g) dense innermost, so the Reshape back to (N, C, H, W) is a view in nhwc: one copy for
    the whole shuffle, and the convolutions after it read it without a reorder.
    """
    strides = md.strides
    src_order = sorted(range(len(strides)), key=lambda d: (-strides[d], d))  # outermost first
    inverse = {src_axis: k for k, src_axis in enumerate(perm)}
    order = [inverse[d] for d in src_order]  # output axes, outermost first
    moved = {k for k, src_axis in enumerate(perm) if src_axis != k}
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and order[j] in moved:
            j += 1
        order[i:j] = sorted(order[i:j])
        i = max(j, i + 1)
    out_strides = [0] * len(out_dims)
    step = 1
    for axis in reversed(order):
        out_strides[axis] = step
        step *= out_dims[axis]
    return dnnl.MemoryDesc.with_strides(out_dims, md.dtype, out_strides)


@lowering("Concat")
def concat(b: Builder, node: ir.Node) -> None:
    srcs = [b.input(node, i) for i in range(len(node.inputs))]
    rank = len(srcs[0].dims)
    axis = node.attributes.get_int("axis", 1) % rank
    dtypes = {s.dtype for s in srcs}
    if len(dtypes) != 1:
        raise UnsupportedOpError(f"node {node.name!r}: Concat of mixed data types")
    if any(
        np.delete(np.array(s.dims), axis).tolist() != np.delete(np.array(srcs[0].dims), axis).tolist() for s in srcs
    ):
        raise UnsupportedOpError(f"node {node.name!r}: Concat inputs {[s.dims for s in srcs]} differ off axis {axis}")
    out_dims = list(srcs[0].dims)
    out_dims[axis] = sum(s.dims[axis] for s in srcs)
    if _concat_by_copies(b, node, srcs, axis, tuple(out_dims)):
        return
    # Inputs in different layouts only have oneDNN's reference concat: try them as they are, then all in
    # the first input's layout, then channels-last, then plain (reordering the inputs that differ).
    layouts = [[s.md for s in srcs]]
    for md in layout_variants(srcs[0].md):
        layouts.append([with_layout_of(s.dims, s.dtype, md) for s in srcs])

    def make(mds):
        dst_md = with_layout_of(tuple(out_dims), srcs[0].dtype, mds[0])
        return dnnl.concat_pd(dst_md, axis, mds, dnnl.Attr())

    pd = b.first_fast(node.name, [lambda mds=mds: make(mds) for mds in layouts])
    srcs = [b.as_md(s, pd.md(dnnl.QUERY_SRC_MD, i), node.name) for i, s in enumerate(srcs)]
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    args = [(dnnl.ARG_MULTIPLE_SRC + i, s) for i, s in enumerate(srcs)] + [(dnnl.ARG_DST, dst)]
    b.add_step(pd, args, node.name)
    b.set_output(node, dst)


# Channels-last inputs with at most this many bytes per pixel are concatenated by one reorder each into
# their window of the output: oneDNN 3.2's concat copies them pixel by pixel (GhostNet's 8 + 8 int8
# channels at 112x112: 181 us against 17 us for two reorders on one thread, 136 against 47 on two).
COPY_CONCAT_MAX_BYTES = 32


def _concat_by_copies(b: Builder, node: ir.Node, srcs: list, axis: int, out_dims: tuple[int, ...]) -> bool:
    """Concat along the channels of nhwc inputs as reorders into windows of the output; False when the
    inputs are not all channels-last, or wide enough for oneDNN's concat."""
    if axis != 1 or len(out_dims) != 4:
        return False
    nhwc = [dnnl.MemoryDesc.with_tag(s.dims, s.dtype, dnnl.TAG_ACDB) for s in srcs]
    if any(s.md != md for s, md in zip(srcs, nhwc, strict=True)):
        return False
    if max(s.dims[1] for s in srcs) * dnnl.DT_SIZE[srcs[0].dtype] > COPY_CONCAT_MAX_BYTES:
        return False
    dst = b.new_tensor(dnnl.MemoryDesc.with_tag(out_dims, srcs[0].dtype, dnnl.TAG_ACDB))
    start = 0
    for s in srcs:
        window = b.view(dst, dst.md.submemory(s.dims, (0, start, 0, 0)))
        b.reorder(s, window, f"{node.name} (input at channel {start})")
        start += s.dims[1]
    b.set_output(node, dst)
    return True


def _window(b: Builder, node: ir.Node, src, dims: tuple[int, ...], offsets: tuple[int, ...], out: int) -> None:
    """Output `out` of `node`: the window `dims` at `offsets` of `src`, copied into a dense tensor."""
    b.set_output(node, _window_tensor(b, node.name, src, dims, offsets), out)


def _window_tensor(b: Builder, label: str, src, dims: tuple[int, ...], offsets: tuple[int, ...]):
    if tuple(dims) == tuple(src.dims):
        return src
    try:
        window = b.view(src, src.md.submemory(dims, offsets))
    except dnnl.DnnlError:  # a window cutting through a layout block: take it from the plain layout
        plain = b.as_plain(src, label)
        window = b.view(plain, plain.md.submemory(dims, offsets))
    dst = b.new_tensor(with_layout_of(dims, src.dtype, src.md))
    b.reorder(window, dst, label)
    return dst


@lowering("Gather")
def gather(b: Builder, node: ir.Node) -> None:
    """Gather of computed data at constant, consecutive indices (attention's q, k, v = qkv[0], [1], [2]):
    the window of those indices, viewed without or with the indices' shape. Gathers of shapes and
    constants never get here: they are evaluated when the program is compiled."""
    indices = b.constant_array(node, 1)
    if indices is None:
        raise UnsupportedOpError(f"node {node.name!r}: Gather on data computed at run time needs constant indices")
    src = b.input(node, 0)
    rank = len(src.dims)
    axis = node.attributes.get_int("axis", 0) % rank
    flat = indices.reshape(-1).astype(np.int64) % src.dims[axis]
    if flat.size == 0 or np.any(np.diff(flat) != 1):
        raise UnsupportedOpError(f"node {node.name!r}: Gather on computed data needs consecutive indices")
    dims, offsets = list(src.dims), [0] * rank
    dims[axis], offsets[axis] = int(flat.size), int(flat[0])
    picked = b.as_plain(_window_tensor(b, node.name, src, tuple(dims), tuple(offsets)), node.name)
    out_dims = (*src.dims[:axis], *indices.shape, *src.dims[axis + 1 :])
    b.set_output(node, b.view(picked, dnnl.MemoryDesc.plain(out_dims, picked.dtype)))


@lowering("Split")
def split(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    rank = len(src.dims)
    axis = node.attributes.get_int("axis", 0) % rank
    sizes = b.constant_array(node, 1)
    if sizes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        raise UnsupportedOpError(f"node {node.name!r}: Split needs constant split sizes")
    parts = [int(s) for s in sizes.reshape(-1)] if sizes is not None else list(node.attributes.get_ints("split", []))
    n_out = len(node.outputs)
    if not parts:
        whole = src.dims[axis]
        step = -(-whole // n_out)
        parts = [min(step, whole - i * step) for i in range(n_out)]
    if sum(parts) != src.dims[axis] or len(parts) != n_out:
        raise UnsupportedOpError(f"node {node.name!r}: split sizes {parts} do not cover axis {axis} of {src.dims}")
    start = 0
    for i, part in enumerate(parts):
        dims = list(src.dims)
        dims[axis] = part
        offsets = [0] * rank
        offsets[axis] = start
        _window(b, node, src, tuple(dims), tuple(offsets), i)
        start += part


@lowering("Slice")
def slice_(b: Builder, node: ir.Node) -> None:
    src = b.input(node, 0)
    rank = len(src.dims)
    values = [b.constant_array(node, i) for i in range(1, 5)]
    if (
        values[0] is None
        or values[1] is None
        or any(v is None and i + 1 < len(node.inputs) and node.inputs[i + 1] is not None for i, v in enumerate(values))
    ):
        raise UnsupportedOpError(f"node {node.name!r}: Slice needs constant starts, ends, axes and steps")
    starts, ends = (v.reshape(-1).tolist() for v in values[:2])
    axes = values[2].reshape(-1).tolist() if values[2] is not None else list(range(len(starts)))
    steps = values[3].reshape(-1).tolist() if values[3] is not None else [1] * len(starts)
    dims, offsets, short = list(src.dims), [0] * rank, [0] * rank
    strided: list[tuple[int, int, int, int]] = []  # (axis, count, step, position within a step group)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis %= rank
        lo, hi, step = slice(int(start), int(end), int(step)).indices(src.dims[axis])
        if step < 1:
            raise UnsupportedOpError(f"node {node.name!r}: Slice with step {step} is not supported")
        count = max(-(-(hi - lo) // step), 0)
        if step == 1 or count <= 1:
            dims[axis], offsets[axis] = count, lo
            continue
        # x[lo::step] is element `r` of each group of `step` in the window [lo - r, lo - r + step * count);
        # where none fits (LeViT's x[:, ::2] of 7 rows) the axis is padded to whole groups, never read
        r = max(0, lo + step * count - src.dims[axis])
        if r > lo:
            short[axis], r = lo + step * count - src.dims[axis], 0
        dims[axis], offsets[axis] = step * count, lo - r
        strided.append((axis, count, step, r))
    if any(short):
        src = constant_padded(b, b.as_plain(src, node.name), [0] * rank, short, 0.0, f"{node.name} (whole groups)")
    window = _window_tensor(b, node.name, src, tuple(dims), tuple(offsets))
    for axis, count, step, r in strided:
        window = _every_step(b, node.name, window, axis, count, step, r)
    b.set_output(node, window)


def _every_step(b: Builder, label: str, src, axis: int, count: int, step: int, r: int):
    """Element r of every group of `step` along `axis` (patch merging's x[:, 0::2, 1::2]): the plain tensor
    viewed with that axis split in (count, step), the window at r of the step axis, made dense."""
    plain = b.as_plain(src, label)
    dims = list(plain.dims)
    grouped = (*dims[:axis], count, step, *dims[axis + 1 :])
    view = b.view(plain, dnnl.MemoryDesc.plain(grouped, plain.dtype))
    picked = _window_tensor(
        b,
        label,
        view,
        (*grouped[: axis + 1], 1, *grouped[axis + 2 :]),
        tuple(r if i == axis + 1 else 0 for i in range(len(grouped))),
    )
    dims[axis] = count
    dense = b.as_plain(picked, label)
    return b.view(dense, dnnl.MemoryDesc.plain(tuple(dims), dense.dtype))


def _pad_spec(b: Builder, node: ir.Node, rank: int) -> tuple[list[int], list[int], float]:
    """(begins, ends, fill value) of a constant-mode Pad over every axis (opset 2 attributes or 11+ inputs)."""
    if "pads" in node.attributes:
        pads = list(node.attributes.get_ints("pads"))
        value = node.attributes.get_float("value", 0.0)
        axes = list(range(rank))
    else:
        given = b.constant_array(node, 1)
        if given is None:
            raise UnsupportedOpError(f"node {node.name!r}: Pad amounts must be constant")
        pads = [int(p) for p in given.reshape(-1)]
        fill = b.constant_array(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else None
        value = float(fill.reshape(-1)[0]) if fill is not None and fill.size else 0.0
        axes_given = b.constant_array(node, 3) if len(node.inputs) > 3 and node.inputs[3] is not None else None
        axes = [int(a) % rank for a in axes_given.reshape(-1)] if axes_given is not None else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise UnsupportedOpError(f"node {node.name!r}: {len(pads)} pad amounts for {len(axes)} axes")
    begins, ends = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[i], pads[i + len(axes)]
    return begins, ends, value


@lowering("Pad")
def pad(b: Builder, node: ir.Node) -> None:
    """Constant-mode Pad: negative amounts crop (a window), positive ones concatenate constant borders, one
    axis at a time, in the plain layout. int8 data is padded with 0 (the converter runs a Pad INT8 only
    when its value is 0 and the zero point 0, so 0 is exact)."""
    mode = node.attributes.get_string("mode", "constant")
    if mode not in ("constant", *_BORDER_SOURCE):
        raise UnsupportedOpError(f"node {node.name!r}: Pad mode {mode!r} is not supported")
    src = b.input(node, 0)
    rank = len(src.dims)
    begins, ends, value = _pad_spec(b, node, rank)
    if mode != "constant":
        _pad_from_data(b, node, src, begins, ends, mode)
        return
    dtype = DNNL_TO_NUMPY.get(src.dtype)
    if dtype is None:
        raise UnsupportedOpError(f"node {node.name!r}: Pad of this data type is not supported")
    if dtype != np.float32 and value != 0.0:
        raise UnsupportedOpError(f"node {node.name!r}: an int8 Pad can only fill 0, not {value}")
    if _pads_for_conv(b, node, begins, ends, value):
        b.set_output(node, src)
        return
    cur = b.as_plain(src, node.name)
    if any(p < 0 for p in begins + ends):  # crop first
        offsets = tuple(max(0, -p) for p in begins)
        dims = tuple(d - max(0, -p) - max(0, -q) for d, p, q in zip(cur.dims, begins, ends, strict=True))
        if min(dims) <= 0:
            raise UnsupportedOpError(f"node {node.name!r}: Pad crops {cur.dims} to nothing")
        window = b.view(cur, cur.md.submemory(dims, offsets))
        cropped = b.new_tensor(dnnl.MemoryDesc.plain(dims, cur.dtype))
        b.reorder(window, cropped, node.name)
        cur = cropped
    begins, ends = [max(0, p) for p in begins], [max(0, p) for p in ends]
    b.set_output(node, constant_padded(b, cur, begins, ends, value, node.name))


def constant_padded(b: Builder, src: Tensor, begins: list[int], ends: list[int], value: float, label: str) -> Tensor:
    """`src` (plain) with `value` borders of these (non-negative) amounts: one concat per padded axis."""
    dtype = DNNL_TO_NUMPY[src.dtype]
    cur = src
    for axis in range(len(src.dims)):
        before, after = begins[axis], ends[axis]
        if not before and not after:
            continue

        def border(amount: int, like: Tensor = cur, axis: int = axis) -> Const:
            dims = list(like.dims)
            dims[axis] = amount
            return b.const(np.full(dims, value, dtype))

        parts = [*([border(before)] if before else []), cur, *([border(after)] if after else [])]
        out_dims = list(cur.dims)
        out_dims[axis] += before + after
        mds = [p.md if p is cur else p.memory.md for p in parts]
        pd = dnnl.concat_pd(dnnl.MemoryDesc.plain(tuple(out_dims), cur.dtype), axis, mds, dnnl.Attr())
        dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
        b.add_step(pd, [(dnnl.ARG_MULTIPLE_SRC + i, p) for i, p in enumerate(parts)] + [(dnnl.ARG_DST, dst)], label)
        cur = dst
    return cur


def _pads_for_conv(b: Builder, node: ir.Node, begins: list[int], ends: list[int], value: float) -> bool:
    """Leave a zero Pad of H and W to the convolutions that alone read it (b.conv_pads): the IR's
    fold_pad_into_conv folds constant Pads, but pads computed from the input's shape (timm's TF-style "same"
    padding) are only constants here. Exact: the conv pads with zeros too (int8 data: the converter runs a
    Pad INT8 only when 0 is its zero point)."""
    out = node.outputs[0]
    readers = list(out.uses())
    if value != 0.0 or len(begins) != 4 or any(begins[:2] + ends[:2]) or min(begins + ends) < 0 or not readers:
        return False
    if out.is_graph_output() or out.name in b.conv_pads:
        return False
    for reader, index in readers:
        if reader.domain != ops.DOMAIN or reader.op_type != "Conv" or index != 0:
            return False
    b.conv_pads[out.name] = [begins[2], begins[3], ends[2], ends[3]]
    return True


# Pad modes that fill a border from the data: the source index (into the unpadded axis of length n) of the
# k-th element before (side -1) or after (side +1) it.
_BORDER_SOURCE = {
    "reflect": lambda k, n, side: 1 + k if side < 0 else n - 2 - k,
    "edge": lambda k, n, side: 0 if side < 0 else n - 1,
    "wrap": lambda k, n, side: n - 1 - k if side < 0 else k,
}


def _pad_from_data(b: Builder, node: ir.Node, src, begins: list[int], ends: list[int], mode: str) -> None:
    """Reflect/edge/wrap Pad (TResNet's anti-aliasing blur pool pads by reflection): the data copied into the
    middle of a plain tensor, then each border element along each axis in turn copied from the element the
    mode names (the borders of later axes read those of earlier ones, so corners come out as ONNX says)."""
    if any(p < 0 for p in begins + ends):
        raise UnsupportedOpError(f"node {node.name!r}: Pad mode {mode!r} with negative amounts is not supported")
    cur = b.as_plain(src, node.name)
    out_dims = tuple(d + p + q for d, p, q in zip(cur.dims, begins, ends, strict=True))
    dst = b.new_tensor(dnnl.MemoryDesc.plain(out_dims, cur.dtype))
    b.reorder(cur, b.view(dst, dst.md.submemory(cur.dims, tuple(begins))), node.name)
    source = _BORDER_SOURCE[mode]
    done = list(cur.dims)  # the extent filled so far on each axis: all of earlier axes, the middle of later ones
    for axis in range(len(out_dims)):
        n, before, after = cur.dims[axis], begins[axis], ends[axis]
        if max(before, after) > (n - 1 if mode == "reflect" else n):
            raise UnsupportedOpError(f"node {node.name!r}: Pad mode {mode!r} by {max(before, after)} of an axis of {n}")
        offsets = [0 if a < axis else begins[a] for a in range(len(out_dims))]
        for side, count, start in ((-1, before, before - 1), (1, after, before + n)):
            for k in range(count):
                to = start - k if side < 0 else start + k
                frm = before + source(k, n, side)
                dims = list(done)
                dims[axis] = 1
                b.reorder(
                    b.view(
                        dst,
                        dst.md.submemory(tuple(dims), tuple(frm if a == axis else o for a, o in enumerate(offsets))),
                    ),
                    b.view(
                        dst, dst.md.submemory(tuple(dims), tuple(to if a == axis else o for a, o in enumerate(offsets)))
                    ),
                    f"{node.name} ({mode} border)",
                )
        done[axis] = out_dims[axis]
    b.set_output(node, dst)
