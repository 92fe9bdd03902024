"""Gemm / MatMul with a constant 2-D weight -> int8kit.Dense (an inner product, W stored [M, K]); a retype.

oneDNN's inner product wants the weight output-features first; storing it that way here means the
converter and runtime never transpose. Gemm's alpha/beta are folded into W and B; a MatMul's
following constant Add becomes B (the same fold fuse_bias_add does for any Dense).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.ir.fuse_bias_add import channel_vector, fold_following_bias
from int8kit.ir.fusion import (
    FusionPass,
    const_array,
    drop_if_unused,
    is_onnx_op,
    new_initializer,
    set_input,
    set_post_ops,
)
from int8kit.ir.weight_grid import WeightGrid, grid_of, set_grid, transposed
from int8kit.metadata import SOURCE_OP_KEY

logger = logging.getLogger(__name__)


def _to_dense(
    node: ir.Node, weight: np.ndarray, bias: np.ndarray | None, transposed_weight: bool, alpha: float = 1.0
) -> None:
    """Rewrite `node` in place as int8kit.Dense(X, W[M, K], B?); name, metadata and output stay. `weight`
    is alpha times the original: int8 values q on scales s stay q, on scales alpha * s."""
    graph = node.graph
    assert graph is not None
    old = list(node.inputs[1:])
    base = node.name or "dense"
    grid = grid_of(node.inputs[1])
    if grid is not None and alpha != 1.0:
        grid = WeightGrid(grid.scales * np.float64(alpha), grid.axis)
    new_weight = new_initializer(graph, f"{base}.weight", np.ascontiguousarray(weight, np.float32))
    if grid is not None:
        set_grid(new_weight, transposed(grid) if transposed_weight else grid)
    set_input(node, 1, new_weight)
    if bias is not None:
        set_input(node, 2, new_initializer(graph, f"{base}.bias", bias.astype(np.float32)))
    elif len(node.inputs) > 2:
        node.resize_inputs(2)
    drop_if_unused(graph, *old)
    node.metadata_props[SOURCE_OP_KEY] = node.op_type
    node.domain = ops.DOMAIN
    node.op_type = "Dense"
    node.version = None
    node.attributes.clear()
    set_post_ops(node, [])


def convert_gemm(node: ir.Node) -> str | None:
    """Gemm -> Dense in place; None, or why it was left alone."""
    alpha, beta = node.attributes.get_float("alpha", 1.0), node.attributes.get_float("beta", 1.0)
    if node.attributes.get_int("transA", 0):
        return "transA=1 (the activation would need a transpose)"
    weight = const_array(node.inputs[1])
    if weight is None or weight.ndim != 2:
        return "B is not a constant 2-D initializer"
    if weight.dtype != np.float32:
        return f"B has dtype {weight.dtype}, not float32"
    trans_b = bool(node.attributes.get_int("transB", 0))
    w = weight if trans_b else weight.T  # -> [M, K]
    w = w * np.float32(alpha) if alpha != 1.0 else w  # int8 weights: alpha scales their grid (_to_dense)
    bias = None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        c = const_array(node.inputs[2])
        if c is None:
            return "C is not a constant"
        vec = channel_vector(c, w.shape[0], 2)
        if isinstance(vec, str):
            return f"C: {vec}"
        bias = vec * np.float32(beta)
    _to_dense(node, w, bias, transposed_weight=not trans_b, alpha=alpha)
    return None


def convert_matmul(node: ir.Node) -> str | None:
    """MatMul(X[..., K], W[K, M]) -> Dense in place (axis = rank - 1 for X of rank > 2); None, or why not."""
    weight = const_array(node.inputs[1])
    if weight is None or weight.ndim != 2:
        return "the second input is not a constant 2-D initializer"
    if weight.dtype != np.float32:
        return f"weight has dtype {weight.dtype}, not float32"
    shape = node.inputs[0].shape
    if shape is None or len(shape) < 2:
        return f"input rank is {'unknown' if shape is None else len(shape)} (run shape inference)"
    if shape[-1] != weight.shape[0]:
        return f"input's last axis is {shape[-1]}, the weight has {weight.shape[0]} rows"
    _to_dense(node, weight.T, None, transposed_weight=True)
    if len(shape) > 2:  # MatMul applies W over the last axis, broadcasting over the leading ones
        node.attributes["axis"] = ir.Attr("axis", ir.AttributeType.INT, len(shape) - 1)
    return None


class GemmToDensePass(FusionPass):
    """Gemm and MatMul with constant weights become int8kit.Dense (MatMul + constant Add gets B).

    The node records its ONNX op type (SOURCE_OP_KEY), which scopes match on.
    """

    report_name = "gemm_to_dense"
    writes = (*FusionPass.writes, SOURCE_OP_KEY)

    def fuse_node(self, node: ir.Node) -> bool:
        if is_onnx_op(node, "Gemm"):
            reason = convert_gemm(node)
        elif is_onnx_op(node, "MatMul"):
            reason = convert_matmul(node)
            if reason is None:
                fold_following_bias(node, self.report)
        else:
            return False
        if reason is not None:
            self.report.skip(node, reason)
            return False
        self.report.fuse(node, "-> int8kit.Dense")
        return True
