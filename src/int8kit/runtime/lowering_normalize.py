"""LayerNormalization, InstanceNormalization (torch's GroupNorm) and LRN (ONNX model zoo's AlexNet/GoogLeNet/
CaffeNet): oneDNN's normalisations.

LayerNormalization: oneDNN's layer normalization over the flattened normalised dims.
ONNX normalises over dims axis..end; oneDNN over the last dim. A plain tensor of shape [a, b, c] with axis 1
is the same bytes as [a, b * c], so the lowering views it so, normalises each row, and views the result back.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl
from int8kit.runtime.compile import Builder, layout_variants
from int8kit.runtime.registry import lowering


@lowering("LayerNormalization")
def layer_normalization(b: Builder, node: ir.Node) -> None:
    for extra in node.outputs[1:]:
        if extra is not None and (extra.uses() or extra.is_graph_output()):
            raise UnsupportedOpError(
                f"node {node.name!r}: LayerNormalization's Mean/InvStdDev outputs are not supported"
            )
    src = b.as_plain(b.input(node, 0), node.name)
    dims = src.dims
    axis = node.attributes.get_int("axis", -1) % len(dims)
    rows, cols = math.prod(dims[:axis]), math.prod(dims[axis:])
    scale = b.constant_array(node, 1)
    has_bias = len(node.inputs) > 2 and node.inputs[2] is not None
    shift = b.constant_array(node, 2) if has_bias else np.zeros(1, np.float32)
    if scale is None or shift is None:
        raise UnsupportedOpError(f"node {node.name!r}: LayerNormalization needs constant Scale and B")
    scale = np.broadcast_to(scale.astype(np.float32), dims[axis:]).reshape(-1)
    shift = np.broadcast_to(shift.astype(np.float32), dims[axis:]).reshape(-1)
    md = dnnl.MemoryDesc.plain((rows, cols), dnnl.DT_F32)
    flat = b.view(src, md)
    epsilon = node.attributes.get_float("epsilon", 1e-5)
    pd = dnnl.layer_normalization_pd(md, md, epsilon, dnnl.NORM_USE_SCALE | dnnl.NORM_USE_SHIFT, dnnl.Attr())
    out = b.new_tensor(md)
    args = [
        (dnnl.ARG_SRC, flat),
        (dnnl.ARG_DST, out),
        (dnnl.ARG_SCALE, b.const(scale)),
        (dnnl.ARG_SHIFT, b.const(shift)),
    ]
    b.add_step(pd, args, node.name)
    b.set_output(node, b.view(out, dnnl.MemoryDesc.plain(dims, dnnl.DT_F32)))


@lowering("InstanceNormalization")
def instance_normalization(b: Builder, node: ir.Node) -> None:
    """Each (n, c) plane normalised over its spatial values: oneDNN's layer normalization over the rows of
    the plain tensor viewed as [N * C, H * W]; the per-channel scale and bias (torch's GroupNorm export
    passes ones and zeros: it applies its affine after) as binary ops when they do anything."""
    src = b.as_plain(b.input(node, 0), node.name)
    dims = src.dims
    scale, bias = b.constant_array(node, 1), b.constant_array(node, 2)
    if scale is None or bias is None:
        raise UnsupportedOpError(f"node {node.name!r}: InstanceNormalization needs constant scale and B")
    md = dnnl.MemoryDesc.plain((dims[0] * dims[1], math.prod(dims[2:])), dnnl.DT_F32)
    epsilon = node.attributes.get_float("epsilon", 1e-5)
    pd = dnnl.layer_normalization_pd(md, md, epsilon, 0, dnnl.Attr())
    out = b.new_tensor(md)
    b.add_step(pd, [(dnnl.ARG_SRC, b.view(src, md)), (dnnl.ARG_DST, out)], node.name)
    out = b.view(out, dnnl.MemoryDesc.plain(dims, dnnl.DT_F32))
    per_channel = (1, dims[1]) + (1,) * (len(dims) - 2)
    for alg, vector, identity in ((dnnl.BINARY_MUL, scale, 1.0), (dnnl.BINARY_ADD, bias, 0.0)):
        if np.all(vector == identity):
            continue
        operand = b.const(np.ascontiguousarray(vector, np.float32).reshape(per_channel))
        step = dnnl.binary_pd(alg, out.md, operand.memory.md, out.md, dnnl.Attr())
        b.add_step(step, [(dnnl.ARG_SRC, out), (dnnl.ARG_SRC_1, operand), (dnnl.ARG_DST, out)], node.name)
    b.set_output(node, out)


@lowering("LRN")
def lrn(b: Builder, node: ir.Node) -> None:
    """ONNX LRN (alpha is divided by size, as in oneDNN): in the input's layout when a kernel takes it."""
    src = b.input(node, 0)
    size = node.attributes.get_int("size")
    alpha = node.attributes.get_float("alpha", 1e-4)
    beta = node.attributes.get_float("beta", 0.75)
    bias = node.attributes.get_float("bias", 1.0)
    pd = b.first_fast(
        node.name,
        [lambda md=md: dnnl.lrn_pd(md, md, size, alpha, beta, bias, dnnl.Attr()) for md in layout_variants(src.md)],
    )
    src = b.as_md(src, pd.md(dnnl.QUERY_SRC_MD), node.name)
    dst = b.new_tensor(pd.md(dnnl.QUERY_DST_MD))
    b.add_step(pd, [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst)
