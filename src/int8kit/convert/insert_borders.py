"""Insert QuantizeLinear / DequantizeLinear / Requantize only where INT8 and FP32 ops meet.

Walks the graph in order, knowing how each tensor is stored (float, or int8/uint8 with a scale).
INT8 compute ops take INT8 input as it arrives (its scale becomes their x_scale) and quantize float
input; Concat needs one shared encoding; FP32 ops and graph outputs get float. Conversions are shared
by all consumers of a tensor. The INT8 attributes of Conv/Dense (x_scale, y_scale, y_type, sum_scale)
are set here, where the encodings are known.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.convert.place_int8 import OUTPUT_INT8_KEY, is_compute, is_data_movement, is_int8
from int8kit.convert.scales import FLOAT, Encoding, int8_encoding
from int8kit.ir._graph import add_initializer, taken_names

logger = logging.getLogger(__name__)

NP_TYPE = {ops.UINT8: np.uint8, ops.INT8: np.int8}
IR_TYPE = {ops.FLOAT: ir.DataType.FLOAT, ops.UINT8: ir.DataType.UINT8, ops.INT8: ir.DataType.INT8}


class Borders:
    """The tensors' encodings and the conversion nodes made so far."""

    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.taken = taken_names(graph)
        self.enc: dict[int, Encoding] = {}
        self.converted: dict[tuple[int, Encoding], ir.Value] = {}
        self.inserted = 0

    def encoding(self, value: ir.Value) -> Encoding:
        return self.enc.get(id(value), FLOAT)

    def convert(self, value: ir.Value, target: Encoding, before: ir.Node) -> ir.Value:
        """`value` stored as `target`, converting (once) before node `before` when needed."""
        have = self.encoding(value)
        if have == target:
            return value
        key = (id(value), target)
        if key in self.converted:
            return self.converted[key]
        name = value.name or "t"
        if not target.is_int8:
            node = ir.node(
                "DequantizeLinear",
                [value, self._scale(name, have.scale), self._zp(name, have.dtype)],
                name=f"{name}/dequantize",
            )
        elif not have.is_int8:
            node = ir.node(
                "QuantizeLinear",
                [value, self._scale(name, target.scale), self._zp(name, target.dtype)],
                name=f"{name}/quantize",
            )
        else:
            node = ir.node(
                "Requantize",
                [value],
                {"x_scale": have.scale, "y_scale": target.scale, "y_type": target.dtype},
                domain=ops.DOMAIN,
                name=f"{name}/requantize",
            )
        out = node.outputs[0]
        out.name = self._fresh(f"{name}_{'f32' if not target.is_int8 else 'u8' if target.dtype == ops.UINT8 else 's8'}")
        out.shape = value.shape
        out.type = ir.TensorType(IR_TYPE[target.dtype])
        self.graph.insert_before(before, node)
        self.enc[id(out)] = target
        self.converted[key] = out
        self.inserted += 1
        return out

    def _fresh(self, base: str) -> str:
        from int8kit.ir._graph import fresh_name

        return fresh_name(base, self.taken)

    def _scale(self, name: str, scale: float) -> ir.Value:
        return add_initializer(self.graph, f"{name}_scale", np.array(scale, dtype=np.float32), self.taken)

    def _zp(self, name: str, dtype: int) -> ir.Value:
        return add_initializer(
            self.graph, f"{name}_zero_point", np.array(0, dtype=NP_TYPE.get(dtype, np.uint8)), self.taken
        )


def _set_float(node: ir.Node, name: str, value: float) -> None:
    node.attributes[name] = ir.Attr(name, ir.AttributeType.FLOAT, float(value))


def _set_int(node: ir.Node, name: str, value: int) -> None:
    node.attributes[name] = ir.Attr(name, ir.AttributeType.INT, int(value))


class InsertBordersPass(ir.passes.InPlacePass):
    """Quantize/dequantize/requantize at INT8-FP32 borders; INT8 attributes on Conv/Dense."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        b = Borders(model.graph)
        for node in list(model.graph):
            if is_int8(node) and is_compute(node):
                self._compute(b, node)
            elif is_int8(node) and is_data_movement(node):
                self._data_movement(b, node)
            else:
                for i, v in enumerate(node.inputs):
                    if v is not None and b.encoding(v).is_int8:
                        node.replace_input_with(i, b.convert(v, FLOAT, node))
        self._float_outputs(b, model.graph)
        logger.info("inserted %d quantize/dequantize/requantize ops", b.inserted)
        return ir.passes.PassResult(model, modified=b.inserted > 0)

    def _compute(self, b: Borders, node: ir.Node) -> None:
        x = node.inputs[0]
        x_enc = b.encoding(x) if b.encoding(x).is_int8 else int8_encoding(x)
        node.replace_input_with(0, b.convert(x, x_enc, node))
        _set_float(node, "x_scale", x_enc.scale)
        out = node.outputs[0]
        y_enc = int8_encoding(out) if node.metadata_props.get(OUTPUT_INT8_KEY) == "1" else FLOAT
        _set_int(node, "y_type", y_enc.dtype)
        if y_enc.is_int8:
            _set_float(node, "y_scale", y_enc.scale)
        if len(node.inputs) > 3 and node.inputs[3] is not None:
            res = node.inputs[3]
            if y_enc.is_int8:
                res_enc = b.encoding(res) if b.encoding(res).is_int8 else (int8_encoding(res) or y_enc)
                _set_float(node, "sum_scale", res_enc.scale)
            else:
                res_enc = FLOAT
            node.replace_input_with(3, b.convert(res, res_enc, node))
        b.enc[id(out)] = y_enc
        out.type = ir.TensorType(IR_TYPE[y_enc.dtype])  # the saved model declares what the kernel writes

    def _data_movement(self, b: Borders, node: ir.Node) -> None:
        if node.op_type == "Concat":
            target = int8_encoding(node.outputs[0])
            for i, v in enumerate(node.inputs):
                node.replace_input_with(i, b.convert(v, target, node))
        else:
            x = node.inputs[0]
            target = b.encoding(x) if b.encoding(x).is_int8 else int8_encoding(x)
            node.replace_input_with(0, b.convert(x, target, node))
        b.enc[id(node.outputs[0])] = target
        node.outputs[0].type = ir.TensorType(IR_TYPE[target.dtype])

    def _float_outputs(self, b: Borders, graph: ir.Graph) -> None:
        for i, out in enumerate(list(graph.outputs)):
            if not b.encoding(out).is_int8:
                continue
            name = out.name
            dq = ir.node(
                "DequantizeLinear",
                [out, b._scale(name, b.encoding(out).scale), b._zp(name, b.encoding(out).dtype)],
                name=f"{name}/dequantize",
            )
            graph.append(dq)
            out.name = b._fresh(f"{name}_int8")
            dq.outputs[0].name = name
            dq.outputs[0].shape = out.shape
            dq.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
            graph.outputs[i] = dq.outputs[0]
            b.inserted += 1
