"""Drop an Expand whose only job an element-wise op would do anyway: op(o, Expand(y, Shape(o))) -> op(o, y).

timm writes `x * gate.expand_as(x)` (ECA, CBAM, MobileViTv2): the Expand materialises the gate at the
full size of x, only for the Mul to read it back element by element, and it hides the gated multiply from
the fusions (an INT8 squeeze-excite Mul). Broadcasting makes it exact: Expand(y, Shape(o)) has shape
broadcast(y, o), and op(o, that) = op(o, y) element for element, for every broadcasting binary op. The
Expand stays for any other reader.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.ir.fusion import is_onnx_op

logger = logging.getLogger(__name__)

BROADCASTING = ("Add", "Sub", "Mul", "Div", "Max", "Min")


def _shape_of(value: ir.Value | None) -> ir.Value | None:
    """The tensor whose whole shape `value` is (a Shape node without start/end), else None."""
    node = value.producer() if value is not None else None
    if not is_onnx_op(node, "Shape") or "start" in node.attributes or "end" in node.attributes:
        return None
    return node.inputs[0]


def drop(expand: ir.Node) -> int:
    """Rewire the element-wise readers of one Expand to its input; how many inputs changed."""
    data, target = expand.inputs[0], _shape_of(expand.inputs[1] if len(expand.inputs) > 1 else None)
    if data is None or target is None:
        return 0
    changed = 0
    for reader, index in list(expand.outputs[0].uses()):
        elementwise = reader.op_type in BROADCASTING and reader.domain in ("", "ai.onnx") and len(reader.inputs) == 2
        if elementwise and reader.inputs[1 - index] is target:
            reader.replace_input_with(index, data)
            changed += 1
    return changed


class DropBroadcastExpandPass(ir.passes.InPlacePass):
    """Every Expand(y, Shape(o)) read by a broadcasting binary op together with o: that op reads y."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        count = 0
        for node in list(graph):
            if not is_onnx_op(node, "Expand"):
                continue
            count += drop(node)
            if not node.outputs[0].uses() and not node.outputs[0].is_graph_output():
                shape = node.inputs[1].producer() if len(node.inputs) > 1 and node.inputs[1] is not None else None
                graph.remove(node, safe=True)
                if (
                    shape is not None
                    and shape.op_type == "Shape"
                    and not shape.outputs[0].uses()
                    and not shape.outputs[0].is_graph_output()
                ):
                    graph.remove(shape, safe=True)
        if count:
            logger.info("drop_broadcast_expand: %d Expand read(s) replaced by broadcasting", count)
        return ir.passes.PassResult(model, modified=count > 0)
