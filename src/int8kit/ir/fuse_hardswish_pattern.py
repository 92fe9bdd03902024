"""x * HardSigmoid(x) with alpha 1/6 and beta 0.5 is HardSwish(x): make it one node.

onnxruntime's quant_pre_process and some exporters spell HardSwish this way; as two ops reading the
conv output it blocks the conv+hardswish fusion and leaves the conv an isolated INT8 op.
"""

from __future__ import annotations

import logging
import math

import onnx_ir as ir

logger = logging.getLogger(__name__)


def _float(node: ir.Node, name: str, default: float) -> float:
    attr = node.attributes.get(name)
    return attr.as_float() if attr is not None else default


def _hardswish_gate(mul: ir.Node) -> tuple[ir.Value, ir.Node] | None:
    """(x, the HardSigmoid node) when `mul` computes x * HardSigmoid(x) with HardSwish's constants."""
    for i in (0, 1):
        gate, other = mul.inputs[i], mul.inputs[1 - i]
        node = gate.producer() if gate is not None else None
        if node is None or node.op_type != "HardSigmoid" or node.domain != "" or node.inputs[0] is not other:
            continue
        if not (
            math.isclose(_float(node, "alpha", 0.2), 1 / 6, rel_tol=1e-4)
            and math.isclose(_float(node, "beta", 0.5), 0.5, rel_tol=1e-6)
        ):
            continue
        if len(gate.uses()) != 1 or gate.is_graph_output():
            continue
        return other, node
    return None


class FuseHardSwishPatternPass(ir.passes.InPlacePass):
    """Mul(x, HardSigmoid(x; 1/6, 0.5)) -> HardSwish(x)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        count = 0
        for mul in list(graph):
            if mul.op_type != "Mul" or mul.domain != "" or mul.graph is None:
                continue
            match = _hardswish_gate(mul)
            if match is None:
                continue
            x, hsig = match
            swish = ir.node(
                "HardSwish", [x], name=f"{mul.name or hsig.name}/hardswish", metadata_props=dict(mul.metadata_props)
            )
            graph.insert_before(mul, swish)
            out = mul.outputs[0]
            name, shape, dtype = out.name, out.shape, out.type
            out.replace_all_uses_with(swish.outputs[0], replace_graph_outputs=True)
            graph.remove([mul, hsig], safe=True)
            out.name = None
            swish.outputs[0].name, swish.outputs[0].shape, swish.outputs[0].type = name, shape, dtype
            count += 1
        if count:
            logger.info("rewrote %d x*HardSigmoid(x) patterns as HardSwish", count)
        return ir.passes.PassResult(model, modified=bool(count))
