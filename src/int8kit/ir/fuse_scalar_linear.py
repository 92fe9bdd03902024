"""A constant scalar Mul or Add after a fused Conv/Dense's activation becomes a `linear` post-op.

PP-HGNetV2 (PaddleClas) and other re-parameterisable nets scale every activation by a learnable scalar and
add another (`x * a + b` after each conv's ReLU): a bias cannot take them once an activation sits between,
and as separate ops they are two passes over each tensor, FP32 between an INT8 conv and a quantize. As
post-ops they cost nothing; where the QDQ file rounds the tensor before the Mul or Add, an `fq` post-op
rounds there first (post_ops_rounded), so the fused kernel computes what the file says.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from int8kit.ir.encoding import fake_quant_post_op
from int8kit.ir.fuse_bias_add import channel_layout
from int8kit.ir.fusion import (
    FusionPass,
    FusionReport,
    append_linear,
    const_array,
    is_onnx_op,
    post_ops,
    sole_consumer,
)


def _scalar_operand(node: ir.Node, data: ir.Value, out_rank: int) -> tuple[ir.Value, float] | None:
    """(the constant input, its value) when `node` combines `data` with one float32 scalar constant."""
    if len(node.inputs) != 2 or data not in node.inputs:
        return None
    other = node.inputs[1] if node.inputs[0] is data else node.inputs[0]
    const = const_array(other)
    if const is None or const.dtype != np.float32 or const.size != 1 or const.ndim > out_rank:
        return None
    return other, float(const.reshape(-1)[0])


def fuse_following_scalar(node: ir.Node, report: FusionReport) -> bool:
    """Absorb a scalar Mul, or a scalar Add no bias can take, that alone reads `node`'s output."""
    consumer, _ = sole_consumer(node.outputs[0])
    if consumer is None or not (is_onnx_op(consumer, "Mul") or is_onnx_op(consumer, "Add")):
        return False
    operand = _scalar_operand(consumer, node.outputs[0], channel_layout(node)[0])
    if operand is None:
        return False
    other, value = operand
    if consumer.op_type == "Add" and not post_ops(node) and fake_quant_post_op(node.outputs[0]) is None:
        return False  # a bias: fuse_bias_add folds it
    alpha, beta = (value, 0.0) if consumer.op_type == "Mul" else (1.0, value)
    linear = append_linear(node, consumer, other, alpha, beta)
    report.fuse(node, f"scalar {consumer.op_type} {consumer.name} -> post-op {linear}")
    return True


class FuseScalarLinearPass(FusionPass):
    """Appends scalar Mul/Add constants after Conv/Dense activations as `linear` post-ops."""

    report_name = "fuse_scalar_linear"

    def fuse_node(self, node: ir.Node) -> bool:
        return self.absorb_followers(node, fuse_following_scalar)
