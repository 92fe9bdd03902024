"""Residual Add(a, b) -> the producing int8kit.Conv/Dense reads the other operand as Sum ("sum" post-op).

oneDNN's sum post-op accumulates into the output buffer, so the residual connection costs no extra
pass over memory (and no extra quantize/dequantize in INT8). Of the two operands the one produced
later in topological order is fused into; the other is usually the earlier skip connection.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.ir.fusion import (
    FusionPass,
    FusionReport,
    absorb,
    fmt_shape,
    is_fused_op,
    is_onnx_op,
    post_ops,
    post_ops_rounded,
    same_value_shapes,
    set_input,
    set_post_ops,
    sole_consumer,
)
from int8kit.ops import POST_OPS, PostOp

logger = logging.getLogger(__name__)

# Post-ops a chain may already hold when "sum" is appended. oneDNN applies the chain in order, so any
# elementwise op before the sum is exact (relu(conv) + skip); only a second "sum" is impossible.
ALLOWED_BEFORE_SUM = frozenset(k for k in POST_OPS if k != "sum")


def _sum_candidate(add: ir.Node, index: int) -> tuple[ir.Node | None, str]:
    """The int8kit Conv/Dense producing operand `index` of `add` if it can take the sum, else why not."""
    operand = add.inputs[index]
    other = add.inputs[1 - index]
    producer = operand.producer() if operand is not None else None
    if not is_fused_op(producer):
        kind = "a graph input or initializer" if producer is None else f"{producer.op_type}"
        return None, f"operand {index} comes from {kind}, not an int8kit Conv/Dense"
    consumer, why = sole_consumer(operand)
    if consumer is None:
        return None, f"operand {index} ({producer.name}): {why}"
    chain = post_ops(producer)
    kinds = [PostOp.decode(p).kind for p in chain]
    if "sum" in kinds:
        return None, f"{producer.name} already has a sum post-op"
    bad = [k for k in kinds if k not in ALLOWED_BEFORE_SUM]
    if bad:
        return None, f"{producer.name} has post-ops {bad} that may not precede a sum"
    if other is None or other is operand:
        return None, f"operand {index}: the Add reads the same value twice"
    out = add.outputs[0]
    if not (same_value_shapes(operand, other) and (out.shape is None or same_value_shapes(operand, out))):
        return None, (
            f"shapes differ or are unknown (broadcast Add?): {fmt_shape(operand.shape)} + "
            f"{fmt_shape(other.shape)} -> {fmt_shape(out.shape)}"
        )
    return producer, ""


def fuse_residual(add: ir.Node, order: dict[ir.Node, int], report: FusionReport) -> bool:
    """Turn `add` into a sum post-op of one of its producers; records why not when it cannot."""
    if len(add.inputs) != 2 or add.inputs[0] is None or add.inputs[1] is None:
        report.skip(add, "Add without two inputs")
        return False

    def position(index: int) -> int:
        producer = add.inputs[index].producer()
        return order.get(producer, -1) if producer is not None else -1

    candidates = sorted((0, 1), key=position, reverse=True)  # the later producer first
    reasons = []
    for index in candidates:
        producer, why = _sum_candidate(add, index)
        if producer is None:
            reasons.append(why)
            continue
        order[producer] = order.get(add, len(order))
        _fuse(add, producer, add.inputs[1 - index])
        report.fuse(producer, f"residual Add {add.name} -> sum post-op")
        return True
    report.skip(add, "; ".join(reasons))
    return False


def _fuse(add: ir.Node, producer: ir.Node, skip: ir.Value) -> None:
    graph = add.graph
    assert graph is not None
    set_input(producer, 3, skip)
    set_post_ops(producer, [*post_ops_rounded(producer), "sum"])
    # The fused node must run after the skip's producer: it moves to where the Add was.
    graph.remove(producer)
    graph.insert_before(add, producer)
    absorb(producer, add)


class FuseResidualAddPass(FusionPass):
    """Folds same-shape Adds of an int8kit Conv/Dense output and another tensor into a sum post-op."""

    report_name = "fuse_residual_add"

    def prepare(self, model: ir.Model) -> None:
        self.order = {node: i for i, node in enumerate(model.graph)}

    def fuse_node(self, node: ir.Node) -> bool:
        if not (is_onnx_op(node, "Add") and any(v is not None and is_fused_op(v.producer()) for v in node.inputs)):
            return False
        return fuse_residual(node, self.order, self.report)
