"""int8kit.Conv/Dense followed by an elementwise activation: append it to the post-op chain.

oneDNN applies post-ops while the output is still in registers, so a fused activation costs nothing
and the INT8 output can be unsigned after ReLU. Runs to a fixed point, so conv -> relu -> clip and
conv + sum -> relu (after fuse_residual_add) both collapse into one node.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import op_table, ops
from int8kit.ir.fusion import (
    FusionPass,
    FusionReport,
    absorb,
    const_array,
    drop_if_unused,
    post_ops_rounded,
    set_post_ops,
    sole_consumer,
)
from int8kit.ops import PostOp

logger = logging.getLogger(__name__)

ACTIVATIONS = op_table.op_types(role="activation")


def _clip_bound(node: ir.Node, index: int, attr: str) -> float | None | str:
    """A Clip bound: a float, None when absent, or why it cannot be used."""
    if attr in node.attributes:  # opset < 11 form
        return node.attributes.get_float(attr, 0.0)
    if len(node.inputs) <= index or node.inputs[index] is None:
        return None
    value = const_array(node.inputs[index])
    if value is None:
        return f"Clip {attr} is not a constant"
    if value.size != 1:
        return f"Clip {attr} is not a scalar"
    return float(value.reshape(-1)[0])


def is_activation(node: ir.Node) -> bool:
    """An ONNX activation of the op table, or int8kit.Gelu (the fused exact GELU)."""
    if node.domain == ops.DOMAIN:
        return node.op_type == "Gelu"
    return node.domain in ("", "ai.onnx") and node.op_type in ACTIVATIONS


def post_op_for(act: ir.Node) -> PostOp | str:
    """The post-op equivalent to activation node `act`, or why there is none."""
    if act.domain == ops.DOMAIN and act.op_type == "Gelu":
        return PostOp("gelu_tanh" if act.attributes.get_string("approximate", "none") == "tanh" else "gelu")
    if act.domain not in ("", "ai.onnx") or act.op_type not in ACTIVATIONS:
        return f"{act.op_type} is not a fusable activation"
    kind = act.op_type
    if kind == "Relu":
        return PostOp("relu")
    if kind == "Clip":
        lo, hi = _clip_bound(act, 1, "min"), _clip_bound(act, 2, "max")
        for bound in (lo, hi):
            if isinstance(bound, str):
                return bound
        if lo is None and hi is None:
            return PostOp("clip", (float(np.finfo(np.float32).min), float(np.finfo(np.float32).max)))
        if hi is None and lo == 0.0:
            return PostOp("relu")
        lo = float(np.finfo(np.float32).min) if lo is None else lo
        hi = float(np.finfo(np.float32).max) if hi is None else hi
        return PostOp("clip", (lo, hi))
    if kind == "HardSwish":
        return PostOp("hardswish")
    if kind == "HardSigmoid":
        alpha, beta = op_table.activation_defaults("hardsigmoid")
        return PostOp("hardsigmoid", (act.attributes.get_float("alpha", alpha), act.attributes.get_float("beta", beta)))
    if kind == "LeakyRelu":
        return PostOp("leakyrelu", (act.attributes.get_float("alpha", op_table.activation_defaults("leakyrelu")[0]),))
    if kind == "Elu":
        return PostOp("elu", (act.attributes.get_float("alpha", op_table.activation_defaults("elu")[0]),))
    return PostOp(op_table.OPS[kind].post_op)  # Sigmoid, Tanh, Softplus, Mish


def fuse_following_activation(node: ir.Node, report: FusionReport) -> bool:
    """Absorb the activation that alone reads `node`'s output; records why not when one is there."""
    consumer, why = sole_consumer(node.outputs[0])
    if consumer is None:
        # Only a refusal worth reporting when an activation is among the readers.
        readers = [u.node for u in node.outputs[0].uses()]
        if any(is_activation(r) for r in readers) or (node.outputs[0].is_graph_output() and readers):
            report.skip(node, why)
        return False
    if not is_activation(consumer):
        return False
    post_op = post_op_for(consumer)
    if isinstance(post_op, str):
        report.skip(consumer, post_op)
        return False
    inputs = list(consumer.inputs[1:])
    set_post_ops(node, [*post_ops_rounded(node), post_op.encode()])
    absorb(node, consumer)
    assert node.graph is not None
    drop_if_unused(node.graph, *inputs)
    report.fuse(node, f"{consumer.op_type} {consumer.name} -> post-op {post_op.encode()}")
    return True


class FuseActivationPass(FusionPass):
    """Appends Relu/Clip/HardSwish/HardSigmoid/Sigmoid/LeakyRelu/Tanh/int8kit.Gelu to Conv/Dense post-ops."""

    report_name = "fuse_activation"

    def fuse_node(self, node: ir.Node) -> bool:
        return self.absorb_followers(node, fuse_following_activation)
