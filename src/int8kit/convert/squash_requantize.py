"""Fold conversions into the ops that produce their input, so no standalone requantize remains.

- Requantize / DequantizeLinear right after an INT8 Conv/Dense that feeds only it: the producer writes
  the wanted encoding directly (its y_scale/y_type change; a float output drops y_scale).
- QuantizeLinear right after a float-output INT8 Conv/Dense that feeds only it: the producer writes
  INT8 directly.
- DequantizeLinear -> QuantizeLinear chains become one Requantize (or vanish when scales match).
When a producer stops writing uint8, a ReLU post-op keeps the clipping uint8 implied.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import ops
from int8kit.convert.insert_borders import IR_TYPE
from int8kit.convert.place_int8 import is_compute, is_int8
from int8kit.convert.propagate_scales import ends_non_negative
from int8kit.ir._graph import const_array, drop_unused_initializers

logger = logging.getLogger(__name__)


def _is(node: ir.Node | None, op: str, domain: str = "") -> bool:
    return node is not None and node.domain == domain and node.op_type == op


def _scale_of(node: ir.Node) -> float:
    return float(const_array(node.inputs[1]).reshape(-1)[0])


def _zp_type(node: ir.Node) -> int:
    zp = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    return ops.INT8 if zp is not None and zp.dtype.kind == "i" else ops.UINT8


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _set(node: ir.Node, name: str, kind: ir.AttributeType, value) -> None:
    node.attributes[name] = ir.Attr(name, kind, value)


def _bypass(graph: ir.Graph, conv: ir.Node, conversion: ir.Node) -> None:
    """Remove `conversion`; `conv`'s output takes over its output value (and name)."""
    out, new = conv.outputs[0], conversion.outputs[0]
    name = new.name
    params = list(conversion.inputs[1:])
    was_output = new.is_graph_output()
    new.replace_all_uses_with(out, replace_graph_outputs=True)
    graph.remove(conversion, safe=True)
    if was_output:  # graph outputs keep their names; elsewhere the producer keeps its own
        new.name = None
        out.name = name
    drop_unused_initializers(graph, params)


def _sole_conversion(conv: ir.Node) -> ir.Node | None:
    out = conv.outputs[0]
    uses = list(out.uses())
    if len(uses) != 1 or out.is_graph_output():
        return None
    return uses[0].node


class SquashRequantizePass(ir.passes.InPlacePass):
    """Fold requantize/dequantize/quantize into INT8 producers; squash dequantize->quantize pairs."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        squashed = 0
        for node in list(graph):
            if node.graph is None or not (is_compute(node) and is_int8(node)):
                continue
            nxt = _sole_conversion(node)
            if nxt is None:
                continue
            y_type = _attr(node, "y_type", ops.FLOAT)
            if y_type != ops.FLOAT and _is(nxt, "Requantize", ops.DOMAIN):
                _set(node, "y_scale", ir.AttributeType.FLOAT, _attr(nxt, "y_scale"))
                _set(node, "y_type", ir.AttributeType.INT, _attr(nxt, "y_type"))
                self._keep_clipping(node, y_type, _attr(nxt, "y_type"))
            elif y_type != ops.FLOAT and _is(nxt, "DequantizeLinear"):
                _set(node, "y_type", ir.AttributeType.INT, ops.FLOAT)
                node.attributes.pop("y_scale", None)
                self._keep_clipping(node, y_type, ops.FLOAT)
            elif y_type == ops.FLOAT and _is(nxt, "QuantizeLinear") and not _has_sum(node):
                _set(node, "y_scale", ir.AttributeType.FLOAT, _scale_of(nxt))
                _set(node, "y_type", ir.AttributeType.INT, _zp_type(nxt))
            else:
                continue
            node.outputs[0].type = ir.TensorType(IR_TYPE[_attr(node, "y_type", ops.FLOAT)])
            _bypass(graph, node, nxt)
            squashed += 1
        for node in list(graph):
            if node.graph is not None and _is(node, "QuantizeLinear"):
                squashed += self._dq_q(graph, node)
        logger.info("squashed %d conversions", squashed)
        return ir.passes.PassResult(model, modified=squashed > 0)

    @staticmethod
    def _keep_clipping(node: ir.Node, old: int, new: int) -> None:
        """A uint8 output clipped negatives; keep that when the output becomes int8 or float."""
        chain = list(_attr(node, "post_ops", []) or [])
        if old == ops.UINT8 and new != ops.UINT8 and not ends_non_negative(chain):
            _set(node, "post_ops", ir.AttributeType.STRINGS, [*chain, "relu"])

    @staticmethod
    def _dq_q(graph: ir.Graph, quant: ir.Node) -> int:
        dq = quant.inputs[0].producer()
        if not _is(dq, "DequantizeLinear") or len(dq.outputs[0].uses()) != 1 or dq.outputs[0].is_graph_output():
            return 0
        src = dq.inputs[0]
        x_scale, y_scale = _scale_of(dq), _scale_of(quant)
        params = list(dq.inputs[1:]) + list(quant.inputs[1:])
        if x_scale == y_scale and _zp_type(dq) == _zp_type(quant):
            replacement = src
        else:
            req = ir.node(
                "Requantize",
                [src],
                {"x_scale": x_scale, "y_scale": y_scale, "y_type": _zp_type(quant)},
                domain=ops.DOMAIN,
                name=f"{quant.name}/requantize",
            )
            graph.insert_before(quant, req)
            replacement = req.outputs[0]
            replacement.type, replacement.shape = ir.TensorType(IR_TYPE[_zp_type(quant)]), src.shape
        name = quant.outputs[0].name
        quant.outputs[0].replace_all_uses_with(replacement, replace_graph_outputs=True)
        graph.remove([quant, dq], safe=True)
        if replacement is not src:
            replacement.name = name
        drop_unused_initializers(graph, params)
        return 1


def _has_sum(node: ir.Node) -> bool:
    return len(node.inputs) > 3 and node.inputs[3] is not None
