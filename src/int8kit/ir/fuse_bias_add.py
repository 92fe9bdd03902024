"""int8kit.Conv/Dense followed by Add of a per-output-channel constant: fold the constant into B.

Exporters often emit the bias as a separate Add (MatMul + Add, or Conv without bias + Add); the runtime
adds B inside the convolution for free, while a separate Add costs a pass over the output.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.encoding import fake_quant_post_op
from int8kit.ir.fusion import (
    FusionPass,
    FusionReport,
    absorb,
    append_linear,
    const_array,
    drop_if_unused,
    is_onnx_op,
    new_initializer,
    post_ops,
    set_input,
    sole_consumer,
)

logger = logging.getLogger(__name__)


def channel_vector(const: np.ndarray, out_channels: int, out_rank: int, channel_axis: int = 1) -> np.ndarray | str:
    """`const` as a length-M bias when it broadcasts along the output-channel axis only, else why not."""
    if const.dtype != np.float32:
        return f"constant has dtype {const.dtype}, not float32"
    if const.ndim > out_rank:
        return f"constant of rank {const.ndim} would broadcast the rank-{out_rank} output"
    shape = (1,) * (out_rank - const.ndim) + const.shape
    others = [d for axis, d in enumerate(shape) if axis != channel_axis]
    if any(d != 1 for d in others) or shape[channel_axis] not in (1, out_channels):
        return f"constant of shape {list(const.shape)} is not a per-output-channel vector of {out_channels}"
    return np.broadcast_to(const.reshape(-1), (out_channels,)).astype(np.float32)


def channel_layout(node: ir.Node) -> tuple[int, int]:
    """(output rank, output-channel axis) of an int8kit Conv (NCHW) or Dense (channels last, after `axis`)."""
    if node.op_type == "Conv":
        return 4, 1
    axis = node.attributes.get_int("axis", 1)
    return axis + 1, axis


def _is_constant_add(node: ir.Node, operand: ir.Value) -> bool:
    if not is_onnx_op(node, "Add") or len(node.inputs) != 2:
        return False
    other = node.inputs[1] if node.inputs[0] is operand else node.inputs[0]
    return const_array(other) is not None


def fold_following_bias(node: ir.Node, report: FusionReport) -> bool:
    """Fold the Add after int8kit Conv/Dense `node` into its bias; records a reason when it cannot."""
    consumer, why = sole_consumer(node.outputs[0])
    if consumer is None:
        if any(_is_constant_add(use.node, node.outputs[0]) for use in node.outputs[0].uses()):
            report.skip(node, why)  # a bias Add is there, but the output is needed unbiased too
        return False
    if not is_onnx_op(consumer, "Add"):
        return False
    if post_ops(node):
        report.skip(consumer, f"{node.name} already has post-ops {post_ops(node)}; the Add is not a bias")
        return False
    other = consumer.inputs[1] if consumer.inputs[0] is node.outputs[0] else consumer.inputs[0]
    const = const_array(other)
    if const is None:
        return False  # a residual Add: fuse_residual_add's business
    if fake_quant_post_op(node.outputs[0]) is not None:
        return _add_after_rounding(node, consumer, other, const, report)
    weight = const_array(node.inputs[1])
    if weight is None:
        report.skip(consumer, f"{node.name}: weight is not a constant")
        return False
    out_rank, channel_axis = channel_layout(node)
    vec = channel_vector(const, weight.shape[0], out_rank, channel_axis)
    if isinstance(vec, str):
        report.skip(consumer, vec)
        return False
    old = node.inputs[2] if len(node.inputs) > 2 else None
    old_b = const_array(old) if old is not None else np.zeros(weight.shape[0], np.float32)
    if old_b is None:
        report.skip(consumer, f"{node.name}: bias is not a constant")
        return False
    graph = node.graph
    assert graph is not None
    bias = new_initializer(graph, f"{node.name}.bias", (old_b + vec).astype(np.float32))
    set_input(node, 2, bias)
    drop_if_unused(graph, old)
    absorb(node, consumer)
    drop_if_unused(graph, other)
    report.fuse(node, f"bias Add {consumer.name} folded into B")
    return True


def _add_after_rounding(node: ir.Node, add: ir.Node, other: ir.Value, const: np.ndarray, report: FusionReport) -> bool:
    """The QDQ file rounds `node`'s output before the Add (onnxruntime quantizes a hard-sigmoid's conv output,
    then adds 3): a scalar Add becomes "fq" then "linear" post-ops, keeping that rounding and saturation;
    a per-channel one stays a separate Add."""
    scalar = const.size == 1 and const.ndim <= channel_layout(node)[0]
    if const.dtype != np.float32 or not scalar:
        report.skip(add, f"the QDQ model rounds {node.name}'s output before this per-channel Add")
        return False
    append_linear(node, add, other, 1.0, float(const.reshape(-1)[0]))
    report.fuse(node, f"constant Add {add.name} after the output's rounding, as post-ops")
    return True


class FuseBiasAddPass(FusionPass):
    """Folds constant per-channel Adds after int8kit Conv/Dense into their bias input."""

    report_name = "fuse_bias_add"

    def fuse_node(self, node: ir.Node) -> bool:
        return self.absorb_followers(node, fold_following_bias)
