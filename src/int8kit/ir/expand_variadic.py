"""Sum, Max, Min and Mean of any number of tensors -> a chain of two-input Add / Max / Min (Mean: then
times 1/n).

Exporters write the variadic forms (Caffe and Keras converters: Sum for residual adds, Max for maxout);
the two-input forms are what the quantizer, the converter (INT8 residual Adds, fused sums) and the engine
know. A one-input Sum/Max/Min/Mean is its input. The chain keeps the node's name on its last step, so
the output (and anything keyed by it) keeps its name too.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.graph import add_initializer, take_over, taken_names

logger = logging.getLogger(__name__)

BINARY_FOR = {"Sum": "Add", "Max": "Max", "Min": "Min", "Mean": "Add"}


def _variadic(node: ir.Node) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type not in BINARY_FOR:
        return False
    inputs = [v for v in node.inputs if v is not None]
    return node.op_type in ("Sum", "Mean") or len(inputs) > 2


class ExpandVariadicPass(ir.passes.InPlacePass):
    """Rewrites each variadic Sum/Max/Min/Mean as two-input ops."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        taken = taken_names(graph)
        count = 0
        for node in [n for n in graph if _variadic(n)]:
            self._expand(graph, node, taken)
            count += 1
        if count:
            logger.info("expanded %d variadic Sum/Max/Min/Mean nodes", count)
        return ir.passes.PassResult(model, modified=bool(count))

    @staticmethod
    def _expand(graph: ir.Graph, node: ir.Node, taken: set[str]) -> None:
        inputs = [v for v in node.inputs if v is not None]
        op = BINARY_FOR[node.op_type]
        base = node.name or node.op_type.lower()
        steps: list[ir.Node] = []
        acc = inputs[0]
        for i, value in enumerate(inputs[1:], 1):
            step = ir.node(op, [acc, value], name=f"{base}/{op.lower()}{i}")
            steps.append(step)
            acc = step.outputs[0]
        if node.op_type == "Mean" and len(inputs) > 1:
            scale = add_initializer(graph, f"{base}_1_over_n", np.array(1.0 / len(inputs), np.float32), taken)
            steps.append(ir.node("Mul", [acc, scale], name=f"{base}/mean"))
            acc = steps[-1].outputs[0]
        if not steps:  # one input: the op is the identity
            steps.append(ir.node("Identity", [acc], name=base))
        steps[-1].name = base
        for step in steps:
            graph.insert_before(node, step)
        out = node.outputs[0]
        dtype = out.type
        take_over(out, steps[-1].outputs[0], rename=True, carry_facts=True)
        steps[-1].outputs[0].type = dtype
        graph.remove(node, safe=True)
