"""Fold conversions into the ops that produce their input, so no standalone requantize remains.

- Requantize / DequantizeLinear right after an INT8 Conv/Dense that feeds only it: the producer writes
  the wanted encoding directly (its y_scale/y_type change; a float output drops y_scale).
- QuantizeLinear right after a float-output INT8 Conv/Dense, or an int8kit.Mean/AveragePool, that feeds
  only it: the producer writes INT8 directly.
- DequantizeLinear -> QuantizeLinear chains become one Requantize (or vanish when encodings match).
When a producer stops writing the encoding the QDQ model rounded its output onto (a uint8 output that
stood for a removed ReLU clipped negatives), an "fq" post-op keeps that rounding and saturation.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import ops
from int8kit.convert.insert_borders import IR_TYPE, requantize_node
from int8kit.convert.place_int8 import is_compute, is_int8
from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import FLOAT, QRANGE, Encoding
from int8kit.ir.graph import const_array, drop_unused_initializers, take_over
from int8kit.metadata import PRECISION_KEY

logger = logging.getLogger(__name__)


def _is(node: ir.Node | None, op: str, domain: str = "") -> bool:
    return node is not None and node.domain == domain and node.op_type == op


def _scale_of(node: ir.Node) -> float:
    return float(const_array(node.inputs[1]).reshape(-1)[0])


def _zp_type(node: ir.Node) -> int:
    zp = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    return ops.INT8 if zp is not None and zp.dtype.kind == "i" else ops.UINT8


def _qdq_encoding(node: ir.Node) -> Encoding:
    """The encoding a QuantizeLinear/DequantizeLinear the border pass wrote stands for."""
    zp = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    return Encoding(_zp_type(node), _scale_of(node), int(zp.reshape(-1)[0]) if zp is not None else 0)


def _output_encoding(node: ir.Node) -> Encoding:
    """What an INT8 Conv/Dense writes, from its attributes."""
    y_type = node.attributes.get_int("y_type", ops.FLOAT)
    if y_type == ops.FLOAT:
        return FLOAT
    return Encoding(y_type, node.attributes.get_float("y_scale"), node.attributes.get_int("y_zero_point", 0))


def _requantize_target(node: ir.Node) -> Encoding:
    """The encoding an int8kit.Requantize writes."""
    return Encoding(
        node.attributes.get_int("y_type"),
        node.attributes.get_float("y_scale"),
        node.attributes.get_int("y_zero_point", 0),
    )


def _write(node: ir.Node, enc: Encoding) -> None:
    """Make an INT8 Conv/Dense write `enc` directly."""
    _set(node, "y_type", ir.AttributeType.INT, enc.dtype)
    for key in ("y_scale", "y_zero_point"):
        node.attributes.pop(key, None)
    if enc.is_int8:
        _set(node, "y_scale", ir.AttributeType.FLOAT, enc.scale)
        if enc.zero_point:
            _set(node, "y_zero_point", ir.AttributeType.INT, enc.zero_point)


def _set(node: ir.Node, name: str, kind: ir.AttributeType, value) -> None:
    node.attributes[name] = ir.Attr(name, kind, value)


def _bypass(graph: ir.Graph, conv: ir.Node, conversion: ir.Node) -> None:
    """Remove `conversion`; `conv`'s output takes over its output value (and name)."""
    params = list(conversion.inputs[1:])
    take_over(conversion.outputs[0], conv.outputs[0])  # graph outputs keep their names
    graph.remove(conversion, safe=True)
    drop_unused_initializers(graph, params)


def _sole_conversion(conv: ir.Node) -> ir.Node | None:
    out = conv.outputs[0]
    uses = list(out.uses())
    if len(uses) != 1 or out.is_graph_output():
        return None
    return uses[0].node


class SquashRequantizePass(ContractPass):
    """Fold requantize/dequantize/quantize into INT8 producers; squash dequantize->quantize pairs."""

    reads = (PRECISION_KEY,)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        squashed = 0
        for node in list(graph):
            if node.graph is None or not (is_compute(node) and is_int8(node)):
                continue
            nxt = _sole_conversion(node)
            if nxt is None:
                continue
            have = _output_encoding(node)
            if have.is_int8 and _is(nxt, "Requantize", ops.DOMAIN):
                target = _requantize_target(nxt)
            elif have.is_int8 and _is(nxt, "DequantizeLinear"):
                target = FLOAT
            elif not have.is_int8 and _is(nxt, "QuantizeLinear") and not _has_sum(node):
                target = _qdq_encoding(nxt)
            else:
                continue
            if have.is_int8:
                self._keep_clipping(node, have, target)
            _write(node, target)
            node.outputs[0].type = ir.TensorType(IR_TYPE[node.attributes.get_int("y_type", ops.FLOAT)])
            _bypass(graph, node, nxt)
            squashed += 1
        for node in list(graph):
            averages = _is(node, "Mean", ops.DOMAIN) or _is(node, "AveragePool", ops.DOMAIN)
            if node.graph is not None and averages and "y_type" not in node.attributes:
                nxt = _sole_conversion(node)
                if nxt is not None and _is(nxt, "QuantizeLinear"):
                    _write(node, _qdq_encoding(nxt))  # the mean rounded once onto the grid its reader wants
                    node.outputs[0].type = ir.TensorType(IR_TYPE[node.attributes.get_int("y_type")])
                    _bypass(graph, node, nxt)
                    squashed += 1
        for node in list(graph):
            if node.graph is not None and _is(node, "QuantizeLinear"):
                squashed += self._dq_q(graph, node)
        logger.info("squashed %d conversions", squashed)
        return ir.passes.PassResult(model, modified=squashed > 0)

    @staticmethod
    def _keep_clipping(node: ir.Node, old: Encoding, new: Encoding) -> None:
        """The QDQ model rounded and saturated this output onto `old`'s grid: keep that as an "fq" post-op
        when the output now goes elsewhere (float, or another encoding)."""
        if old == new:
            return
        qmin, qmax = QRANGE[old.dtype]
        fq = ops.PostOp("fq", (old.scale, float(old.zero_point), float(qmin), float(qmax))).encode()
        chain = list(node.attributes.get_strings("post_ops", []))
        _set(node, "post_ops", ir.AttributeType.STRINGS, [*chain, fq])

    @staticmethod
    def _dq_q(graph: ir.Graph, quant: ir.Node) -> int:
        dq = quant.inputs[0].producer()
        if not _is(dq, "DequantizeLinear") or len(dq.outputs[0].uses()) != 1 or dq.outputs[0].is_graph_output():
            return 0
        src = dq.inputs[0]
        have, target = _qdq_encoding(dq), _qdq_encoding(quant)
        params = list(dq.inputs[1:]) + list(quant.inputs[1:])
        if have == target:
            replacement = src
        else:
            req = requantize_node(src, have, target, f"{quant.name}/requantize")
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
