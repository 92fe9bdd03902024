"""Turn Constant nodes into initializers.

Paddle (and PaddleOCR) exports keep every weight in a Constant node; the folding passes, the quantizer
and the runtime all look for weights in initializers, so intake moves them there first. Unlike onnx_ir's
LiftConstantsToInitializersPass this lifts every size and the scalar/list forms (value_float(s),
value_int(s)), since tiny constants (Pad pads, Clip bounds, Reshape shapes) are what other passes read.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

logger = logging.getLogger(__name__)


def _tensor_of(node: ir.Node, name: str) -> ir.TensorProtocol | None:
    """The tensor a Constant node produces, or None for forms we do not lift (sparse, strings)."""
    if len(node.attributes) != 1:
        return None
    attr_name, attr = next(iter(node.attributes.items()))
    if attr_name == "value":
        return attr.as_tensor()
    if attr_name == "value_float":
        return ir.tensor(np.array(attr.as_float(), dtype=np.float32), name=name)
    if attr_name == "value_floats":
        return ir.tensor(np.array(attr.as_floats(), dtype=np.float32), name=name)
    if attr_name == "value_int":
        return ir.tensor(np.array(attr.as_int(), dtype=np.int64), name=name)
    if attr_name == "value_ints":
        return ir.tensor(np.array(attr.as_ints(), dtype=np.int64), name=name)
    return None


class ConstantsToInitializersPass(ir.passes.InPlacePass):
    """Replaces each Constant node (value, value_float(s), value_int(s)) by a same-named initializer."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        count = 0
        for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
            if node.op_type != "Constant" or node.domain != "":
                continue
            graph = node.graph
            output = node.outputs[0]
            if output.is_graph_output() or output.name is None or not isinstance(graph, ir.Graph):
                continue  # an initializer that is also an output is legal but confuses runtimes; keep it
            tensor = _tensor_of(node, output.name)
            if tensor is None:
                logger.debug("Constant %r: attribute form not lifted", node.name)
                continue
            value = ir.Value(
                name=output.name,
                shape=ir.Shape(tensor.shape),
                type=ir.TensorType(tensor.dtype),
                const_value=tensor,
                metadata_props=dict(output.metadata_props),
            )
            output.replace_all_uses_with(value)
            graph.remove(node, safe=True)
            graph.register_initializer(value)
            count += 1
        if count:
            logger.info("lifted %d Constant nodes to initializers", count)
        return ir.passes.PassResult(model, modified=bool(count))
