"""int8kit.Conv/Dense whose output x feeds both a gate g(x) and Mul(x, g(x)): one post-op.

x * Sigmoid(x) is SiLU (swish, EfficientNet's activation), x * HardSigmoid(x; 1/6, 0.5) is HardSwish.
Exporters write them as two ops reading the conv output, which blocks the ordinary activation fusion
(the output has two readers) and, in a QDQ model, makes the conv an INT8 island between FP32 ops.
This pass runs among the fusions, after the converter removed the Q/DQ pairs that sat between them.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from int8kit.ir.encoding import fake_quant_post_op
from int8kit.ir.fusion import FusionPass, FusionReport, absorb, is_onnx_op, post_ops_rounded, set_post_ops
from int8kit.ops import PostOp


def _float(node: ir.Node, name: str, default: float) -> float:
    attr = node.attributes.get(name)
    return attr.as_float() if attr is not None else default


def gate_post_op(gate: ir.Node) -> PostOp | None:
    """The post-op x * gate(x) equals, or None when the gate is not one with a oneDNN equivalent."""
    if is_onnx_op(gate, "Sigmoid"):
        return PostOp("swish", (1.0,))
    if is_onnx_op(gate, "HardSigmoid") and (
        math.isclose(_float(gate, "alpha", 0.2), 1 / 6, rel_tol=1e-4)
        and math.isclose(_float(gate, "beta", 0.5), 0.5, rel_tol=1e-6)
    ):
        return PostOp("hardswish")
    return None


def fuse_gated(node: ir.Node, report: FusionReport) -> bool:
    """Absorb gate and Mul when node's output is read exactly by gate(x) and Mul(x, gate(x))."""
    out = node.outputs[0]
    if out.is_graph_output():
        return False
    readers = [u.node for u in out.uses()]
    if len(readers) != 2:
        return False
    for gate, mul in (readers, readers[::-1]):
        post_op = gate_post_op(gate)
        if post_op is None or not is_onnx_op(mul, "Mul") or gate.inputs[0] is not out:
            continue
        g = gate.outputs[0]
        if g.is_graph_output() or [u.node for u in g.uses()] != [mul] or set(mul.inputs) != {out, g}:
            continue
        if fake_quant_post_op(g) is not None:
            # x * Q/DQ(gate(x)): the file rounds the gate (onnxruntime's pre-processing writes HardSwish
            # this way); one post-op cannot, so the gate and the multiply stay two ops, exactly as written.
            report.skip(mul, f"the QDQ model rounds the gate {g.name!r} before the multiply")
            continue
        set_post_ops(node, [*post_ops_rounded(node), post_op.encode()])
        graph = node.graph
        assert graph is not None
        mul.replace_input_with(0, out)
        mul.replace_input_with(1, out)
        graph.remove(gate, safe=True)
        absorb(node, _as_single_reader(mul))
        report.fuse(node, f"{gate.op_type} {gate.name} * -> post-op {post_op.encode()}")
        return True
    return False


def _as_single_reader(mul: ir.Node) -> ir.Node:
    """Mul(x, x) reads x twice; make it read once so `absorb` sees a sole consumer."""
    mul.resize_inputs(1)
    return mul


class FuseGatedActivationPass(FusionPass):
    """Conv/Dense -> {Sigmoid, Mul} (SiLU) or {HardSigmoid(1/6, 0.5), Mul} (HardSwish) -> one post-op."""

    report_name = "fuse_gated_activation"

    def fuse_node(self, node: ir.Node) -> bool:
        return self.absorb_followers(node, fuse_gated)
