"""Mul(x, scale[C]) -> Add(shift[C]) -> activation: one int8kit.Affine (a BatchNorm no conv can absorb).

A BatchNormalization that follows a Concat or a pool (DenseNet's pre-activation BN-ReLU) cannot fold
into a convolution; intake lowers it to Mul + Add, which with its ReLU are three passes over the tensor,
and in an INT8 model three FP32 ops between a dequantize and a quantize. As one Affine node it is one
oneDNN binary primitive with post-ops, and it runs on INT8 data directly (see int8kit.ops).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.ir.encoding import fake_quant_post_op
from int8kit.ir.fuse_activation import post_op_for
from int8kit.ir.fuse_bias_add import channel_vector
from int8kit.ir.fusion import (
    FusionPass,
    absorb,
    const_array,
    is_onnx_op,
    new_initializer,
    post_ops_rounded,
    set_post_ops,
)


def _constant_operand(node: ir.Node) -> tuple[ir.Value, np.ndarray] | None:
    """(data operand, constant) of a two-input node with exactly one constant input."""
    if len(node.inputs) != 2 or any(v is None for v in node.inputs):
        return None
    a, b = node.inputs
    ca, cb = const_array(a), const_array(b)
    if (ca is None) == (cb is None):
        return None
    return (b, ca) if ca is not None else (a, cb)


def _sole_reader(value: ir.Value) -> ir.Node | None:
    uses = list(value.uses())
    if value.is_graph_output() or len(uses) != 1:
        return None
    return uses[0].node


class FuseChannelAffinePass(FusionPass):
    """Mul by a per-channel constant, then Add of one (then ReLU-like activations) -> int8kit.Affine."""

    report_name = "fuse_channel_affine"

    def fuse_node(self, node: ir.Node) -> bool:
        if not is_onnx_op(node, "Mul") or node.graph is None:
            return False
        operands = _constant_operand(node)
        x = operands[0] if operands else None
        if operands is None or x.shape is None or len(x.shape) != 4 or not isinstance(x.shape[1], int):
            return False
        channels, rank = x.shape[1], len(x.shape)
        scale = channel_vector(operands[1], channels, rank)
        add = _sole_reader(node.outputs[0])
        add_operands = _constant_operand(add) if add is not None and is_onnx_op(add, "Add") else None
        if isinstance(scale, str) or add_operands is None:
            return False
        if fake_quant_post_op(node.outputs[0]) is not None:
            self.report.skip(node, "the QDQ model rounds the product before the shift (kept as two ops)")
            return False
        shift = channel_vector(add_operands[1], channels, rank)
        if isinstance(shift, str):
            self.report.skip(add, shift)
            return False
        graph = node.graph
        old = [v for v in (*node.inputs, *add.inputs) if v is not None and v.const_value is not None]
        node.domain, node.op_type, node.version = ops.DOMAIN, "Affine", None
        node.replace_input_with(0, x)
        node.replace_input_with(1, new_initializer(graph, f"{node.name or 'affine'}.scale", scale))
        node.resize_inputs(3)
        node.replace_input_with(2, new_initializer(graph, f"{node.name or 'affine'}.shift", shift))
        set_post_ops(node, [])
        absorb(node, add)
        absorbed = []
        while (act := _sole_reader(node.outputs[0])) is not None and not isinstance(post_op_for(act), str):
            absorbed.append(post_op_for(act).encode())
            set_post_ops(node, [*post_ops_rounded(node), absorbed[-1]])
            absorb(node, act)
        for value in old:
            if not value.uses() and value.is_initializer() and not value.is_graph_output():
                graph.initializers.pop(value.name, None)
        self.report.fuse(node, f"Mul + Add{' + ' + ', '.join(absorbed) if absorbed else ''} -> int8kit.Affine")
        return True
