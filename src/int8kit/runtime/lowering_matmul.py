"""MatMul of two computed tensors (attention's Q.K^T and P.V): oneDNN's matmul primitive.

A MatMul with a constant weight is an int8kit.Dense by now (gemm_to_dense); what reaches this lowering
multiplies two activations, in FP32. Batch dims broadcast as ONNX (numpy) says: the shorter operand is
viewed with leading 1s, which oneDNN's matmul broadcasts. A transposed view (the K^T of attention, a
Transpose the engine ran as a strided view) is handed to oneDNN as it is when its kernel takes those strides,
and made plain otherwise.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl
from int8kit.runtime.compile import Builder, Const, Tensor
from int8kit.runtime.registry import lowering


@lowering("MatMul")
def matmul(b: Builder, node: ir.Node) -> None:
    consts = [b.constant_array(node, i) for i in range(2)]
    tensors = [b.input(node, i) if c is None else None for i, c in enumerate(consts)]
    dims = [tuple(c.shape) if c is not None else t.dims for c, t in zip(consts, tensors, strict=True)]
    if min(len(d) for d in dims) < 2:
        raise UnsupportedOpError(f"node {node.name!r}: MatMul of a 1-D operand is not supported")
    if any(t is not None and t.dtype != dnnl.DT_F32 for t in tensors):
        raise UnsupportedOpError(f"node {node.name!r}: MatMul of two computed tensors runs in FP32 only")
    rank = max(len(d) for d in dims)
    padded = [(1,) * (rank - len(d)) + tuple(d) for d in dims]
    (m, k), (k2, n) = padded[0][-2:], padded[1][-2:]
    if k != k2:
        raise UnsupportedOpError(f"node {node.name!r}: MatMul of shapes {dims[0]} and {dims[1]}")
    batch = tuple(np.broadcast_shapes(padded[0][:-2], padded[1][:-2]))
    dst_md = dnnl.MemoryDesc.plain((*batch, m, n), dnnl.DT_F32)
    operands: list[Tensor | Const] = [
        b.const(c.astype(np.float32).reshape(shape)) if c is not None else _viewed(b, t, shape, node.name)
        for c, t, shape in zip(consts, tensors, padded, strict=True)
    ]

    def make(plain: bool) -> dnnl.PrimitiveDesc:
        mds = [o.memory.md if isinstance(o, Const) else o.md for o in operands]
        if plain:
            mds = [dnnl.MemoryDesc.plain(md.dims, md.dtype) for md in mds]
        return dnnl.matmul_pd(mds[0], mds[1], None, dst_md, dnnl.Attr())

    pd = b.first_fast(node.name, [lambda: make(False), lambda: make(True)])
    for i, query in enumerate((dnnl.QUERY_SRC_MD, dnnl.QUERY_WEIGHTS_MD)):
        if isinstance(operands[i], Tensor):
            operands[i] = b.as_md(operands[i], pd.md(query), node.name)
    dst = b.new_tensor(dst_md)
    b.add_step(pd, [(dnnl.ARG_SRC, operands[0]), (dnnl.ARG_WEIGHTS, operands[1]), (dnnl.ARG_DST, dst)], node.name)
    b.set_output(node, dst)


def _viewed(b: Builder, tensor: Tensor, shape: tuple[int, ...], label: str) -> Tensor:
    """`tensor` under dims `shape` (leading 1s added), in its own layout when oneDNN can say so, else plain."""
    if tensor.dims == shape:
        return tensor
    try:
        return b.view(tensor, tensor.md.reshape(shape))
    except dnnl.DnnlError:
        plain = b.as_plain(tensor, label)
        return b.view(plain, plain.md.reshape(shape))
