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

from int8kit import op_table, ops
from int8kit.convert.place_int8 import (
    OUTPUT_INT8_KEY,
    binary_operands,
    is_affine,
    is_binary,
    is_compute,
    is_data_movement,
    is_global_mean,
    is_int8,
    reduce_axes,
)
from int8kit.convert.propagate_scales import VALUE_PRESERVING
from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import FLOAT, Encoding, covering, encoding, fake_quant_post_op
from int8kit.ir.fusion import is_onnx_op
from int8kit.ir.graph import add_initializer, taken_names
from int8kit.metadata import ENCODING_KEY, PRECISION_KEY

logger = logging.getLogger(__name__)

# Ops that read only their input's shape (exporters' shape subgraphs): they take INT8 tensors as they are.
SHAPE_READERS = op_table.op_types(role="shape")
NP_TYPE = {ops.UINT8: np.uint8, ops.INT8: np.int8}
IR_TYPE = {ops.FLOAT: ir.DataType.FLOAT, ops.UINT8: ir.DataType.UINT8, ops.INT8: ir.DataType.INT8}


class Borders:
    """The tensors' encodings and the conversion nodes made so far."""

    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.taken = taken_names(graph)
        self.enc: dict[int, Encoding] = {}
        self.converted: dict[tuple[int, Encoding], ir.Value] = {}
        self.on_grid: dict[int, Encoding] = {}  # float values already rounded onto this encoding's grid
        self.inserted = 0

    def encoding(self, value: ir.Value) -> Encoding:
        return self.enc.get(id(value), FLOAT)

    def int8_encoding(self, value: ir.Value) -> Encoding | None:
        """The encoding the file gives `value`, else the INT8 one it arrives in (None when neither).

        Data movement writes its input's encoding; where the file puts the moved values on a grid of their
        own (a Slice output quantized with a new scale), readers get them requantized onto it, as the file
        rounds them."""
        own = encoding(value)
        if own is not None and own.is_int8:
            return own
        return self.encoding(value) if self.encoding(value).is_int8 else own

    def as_file_grid(self, value: ir.Value, before: ir.Node) -> ir.Value:
        """INT8 `value` requantized onto the file's own grid for it when it arrives on another."""
        own = encoding(value)
        if self.encoding(value).is_int8 and own is not None and own.is_int8 and own != self.encoding(value):
            return self.convert(value, own, before)
        return value

    def as_file_reads_it(self, value: ir.Value, before: ir.Node) -> ir.Value:
        """`value` in float, as the QDQ file gives it to a float consumer: dequantized when it is INT8,
        rounded through its own Q -> DQ pair when it is float but the file quantizes it."""
        if self.encoding(value).is_int8:
            return self.convert(self.as_file_grid(value, before), FLOAT, before)
        enc = encoding(value)
        if enc is None or self.on_grid.get(id(value)) == enc:
            return value
        if self._rounds_in_producer(value):
            _round_to(value.producer(), value)
            self.on_grid[id(value)] = enc
            return value
        rounded = self.convert(self.convert(value, enc, before), FLOAT, before)
        self.on_grid[id(rounded)] = enc
        return rounded

    def _rounds_in_producer(self, value: ir.Value) -> bool:
        """Whether the FP32 op writing `value` can round it itself (an "fq" post-op), in place of a
        Quantize -> Dequantize pair: mixed-precision models then pay nothing between two FP32 layers.
        Every reader of a tensor the file quantizes reads it rounded (INT8 readers re-quantize it exactly),
        so only a graph output, which the file gives unrounded, rules it out."""
        producer = value.producer()
        return (
            producer is not None
            and (is_compute(producer) or is_affine(producer))
            and not is_int8(producer)
            and producer.outputs[0] is value
            and not value.is_graph_output()
        )

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
                [value, self._scale(name, have.scale), self._zp(name, have)],
                name=f"{name}/dequantize",
            )
        elif not have.is_int8:
            node = ir.node(
                "QuantizeLinear",
                [value, self._scale(name, target.scale), self._zp(name, target)],
                name=f"{name}/quantize",
            )
        else:
            node = requantize_node(value, have, target, f"{name}/requantize")
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
        from int8kit.ir.graph import fresh_name

        return fresh_name(base, self.taken)

    def _scale(self, name: str, scale: float) -> ir.Value:
        return add_initializer(self.graph, f"{name}_scale", np.array(scale, dtype=np.float32), self.taken)

    def _zp(self, name: str, enc: Encoding) -> ir.Value:
        return add_initializer(
            self.graph, f"{name}_zero_point", np.array(enc.zero_point, dtype=NP_TYPE[enc.dtype]), self.taken
        )


def requantize_node(value: ir.Value, have: Encoding, target: Encoding, name: str) -> ir.Node:
    """An int8kit.Requantize from one INT8 encoding to another."""
    attrs = {"x_scale": have.scale, "y_scale": target.scale, "y_type": target.dtype}
    if have.zero_point:
        attrs["x_zero_point"] = have.zero_point
    if target.zero_point:
        attrs["y_zero_point"] = target.zero_point
    return ir.node("Requantize", [value], attrs, domain=ops.DOMAIN, name=name)


def _set_float(node: ir.Node, name: str, value: float) -> None:
    node.attributes[name] = ir.Attr(name, ir.AttributeType.FLOAT, float(value))


def _set_int(node: ir.Node, name: str, value: int) -> None:
    node.attributes[name] = ir.Attr(name, ir.AttributeType.INT, int(value))


def _round_to(node: ir.Node, out: ir.Value) -> None:
    """Append the "fq" post-op of `out`'s encoding: a float output keeps the QDQ rounding and saturation."""
    attr = node.attributes.get("post_ops")
    chain = list(attr.as_strings()) if attr is not None else []
    fq = fake_quant_post_op(out)
    node.attributes["post_ops"] = ir.Attr("post_ops", ir.AttributeType.STRINGS, [*chain, fq])


def _set_zero_point(node: ir.Node, name: str, enc: Encoding) -> None:
    """Zero points are written only when non-zero (the op contract's default is 0)."""
    if enc.zero_point:
        _set_int(node, name, enc.zero_point)
    else:
        node.attributes.pop(name, None)


class InsertBordersPass(ContractPass):
    """Quantize/dequantize/requantize at INT8-FP32 borders; INT8 attributes on Conv/Dense."""

    reads = (PRECISION_KEY, OUTPUT_INT8_KEY, ENCODING_KEY)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        b = Borders(model.graph)
        for node in list(model.graph):
            if is_int8(node) and is_compute(node):
                self._compute(b, node)
            elif is_int8(node) and is_data_movement(node):
                self._data_movement(b, node)
            elif is_int8(node) and is_binary(node):
                self._binary(b, node)
            elif is_int8(node) and is_affine(node):
                self._affine(b, node)
            elif is_global_mean(node) and b.encoding(node.inputs[0]).is_int8:
                self._int8_mean(b, node)
            elif is_onnx_op(node, "AveragePool") and b.encoding(node.inputs[0]).is_int8:
                self._int8_average_pool(b, node)
            elif node.op_type in SHAPE_READERS and node.domain in ("", "ai.onnx"):
                continue  # reads only the shape, which INT8 data has too: no dequantize for it
            else:
                for i, v in enumerate(node.inputs):
                    if v is not None and v.const_value is None:
                        node.replace_input_with(i, b.as_file_reads_it(v, node))
                self._keeps_grid(b, node)
        self._float_outputs(b, model.graph)
        logger.info("inserted %d quantize/dequantize/requantize ops", b.inserted)
        return ir.passes.PassResult(model, modified=b.inserted > 0)

    @staticmethod
    def _keeps_grid(b: Borders, node: ir.Node) -> None:
        """A float op that only moves values keeps them on the grid they were rounded onto."""
        x = node.inputs[0] if node.inputs else None
        grid = b.on_grid.get(id(x)) if x is not None else None
        if node.op_type not in VALUE_PRESERVING or grid is None:
            return
        for out in node.outputs:
            if out is not None and encoding(out) == grid:
                b.on_grid[id(out)] = grid

    @staticmethod
    def _int8_input(b: Borders, node: ir.Node) -> None:
        """Input 0 in INT8 (as it arrives, else quantized onto the file's grid); x_scale/x_zero_point set."""
        x = node.inputs[0]
        x_enc = b.int8_encoding(x)
        node.replace_input_with(0, b.convert(x, x_enc, node))
        _set_float(node, "x_scale", x_enc.scale)
        _set_zero_point(node, "x_zero_point", x_enc)

    @staticmethod
    def _output(b: Borders, node: ir.Node) -> Encoding:
        """What an INT8 Conv/Dense/Affine writes (its y_* attributes set): INT8 when a reader wants it, else
        float rounded as the file rounds it."""
        out = node.outputs[0]
        y_enc = encoding(out) if node.metadata_props.get(OUTPUT_INT8_KEY) == "1" else FLOAT
        if not y_enc.is_int8 and encoding(out) is not None:
            _round_to(node, out)  # the QDQ model rounds this output onto its grid before float readers
            b.on_grid[id(out)] = encoding(out)
        _set_int(node, "y_type", y_enc.dtype)
        if y_enc.is_int8:
            _set_float(node, "y_scale", y_enc.scale)
            _set_zero_point(node, "y_zero_point", y_enc)
        return y_enc

    def _compute(self, b: Borders, node: ir.Node) -> None:
        self._int8_input(b, node)
        out = node.outputs[0]
        y_enc = self._output(b, node)
        if len(node.inputs) > 3 and node.inputs[3] is not None:
            res = node.inputs[3]
            if y_enc.is_int8:
                res_enc = b.int8_encoding(res) or y_enc
                _set_float(node, "sum_scale", res_enc.scale)
                _set_zero_point(node, "sum_zero_point", res_enc)
                node.replace_input_with(3, b.convert(res, res_enc, node))
            else:
                node.replace_input_with(3, b.as_file_reads_it(res, node))
        b.enc[id(out)] = y_enc
        out.type = ir.TensorType(IR_TYPE[y_enc.dtype])  # the saved model declares what the kernel writes

    def _data_movement(self, b: Borders, node: ir.Node) -> None:
        if node.op_type == "Concat":
            target = encoding(node.outputs[0]) or covering([encoding(v) for v in node.inputs])
            for i, v in enumerate(node.inputs):
                own = encoding(v)
                if not b.encoding(v).is_int8 and own is not None and own != target:
                    v = b.convert(v, own, node)  # a float input is rounded onto its own grid first, as the file does
                node.replace_input_with(i, b.convert(b.as_file_grid(v, node), target, node))
        else:
            x = node.inputs[0]
            target = b.int8_encoding(x)
            node.replace_input_with(0, b.convert(x, target, node))
        # Data movement writes its input's encoding (place_int8 keeps average pools whose output the file
        # puts on another grid FP32).
        for out in node.outputs:
            if out is None:
                continue
            b.enc[id(out)] = target
            out.type = ir.TensorType(IR_TYPE[target.dtype])

    def _int8_mean(self, b: Borders, node: ir.Node) -> None:
        """An FP32 global average of INT8 data reads it directly (int8kit.Mean): no dequantize of the big
        input, the float mean is exact, and its own quantize (if any) acts on the small result."""
        x = b.as_file_grid(node.inputs[0], node)
        node.replace_input_with(0, x)
        enc = b.encoding(x)
        rank = len(x.shape) if x.shape is not None else 4
        axes = list(range(2, rank))
        keepdims = 1
        if node.op_type == "ReduceMean":
            axes = reduce_axes(node) or axes
            keepdims = node.attributes["keepdims"].as_int() if "keepdims" in node.attributes else 1
        node.attributes.clear()
        node.attributes["axes"] = ir.Attr("axes", ir.AttributeType.INTS, axes)
        node.attributes["keepdims"] = ir.Attr("keepdims", ir.AttributeType.INT, keepdims)
        _set_float(node, "x_scale", enc.scale)
        _set_zero_point(node, "x_zero_point", enc)
        node.resize_inputs(1)
        node.domain, node.op_type, node.version = ops.DOMAIN, "Mean", None
        b.enc[id(node.outputs[0])] = FLOAT

    @staticmethod
    def _int8_average_pool(b: Borders, node: ir.Node) -> None:
        """An FP32 average pool of INT8 data reads it directly (int8kit.AveragePool): no dequantized copy,
        and the float average it writes is exact; squash_requantize then folds the output's own quantize
        into it (DenseNet's transitions, Inception's pooled branches: the file rounds the average once
        onto the output's grid)."""
        x = b.as_file_grid(node.inputs[0], node)
        node.replace_input_with(0, x)
        enc = b.encoding(x)
        _set_float(node, "x_scale", enc.scale)
        _set_zero_point(node, "x_zero_point", enc)
        node.domain, node.op_type, node.version = ops.DOMAIN, "AveragePool", None
        b.enc[id(node.outputs[0])] = FLOAT

    def _affine(self, b: Borders, node: ir.Node) -> None:
        """INT8 Affine: its input's encoding as x_scale/x_zero_point, its output's as for Conv."""
        self._int8_input(b, node)
        y_enc = self._output(b, node)
        out = node.outputs[0]
        b.enc[id(out)] = y_enc
        out.type = ir.TensorType(IR_TYPE[y_enc.dtype])

    def _binary(self, b: Borders, node: ir.Node) -> None:
        """Add/Mul -> int8kit.Binary: int8 operands (a float broadcast gate may stay float), scales as attributes."""
        a, other = binary_operands(node)
        a_enc = b.int8_encoding(a)
        # The other operand is INT8 on the grid the file gives it; a broadcast gate without one (or with a
        # zero point, which oneDNN's binary kernels lack) is multiplied in float.
        file_b = b.int8_encoding(other)
        b_enc = file_b if file_b is not None and not file_b.zero_point else FLOAT
        new_a, new_b = b.convert(a, a_enc, node), b.convert(other, b_enc, node)
        out = node.outputs[0]
        y_enc = encoding(out) if node.metadata_props.get(OUTPUT_INT8_KEY) == "1" else FLOAT
        if not y_enc.is_int8 and encoding(out) is not None:
            lo, hi = encoding(out).real_range()
            node.attributes["clip"] = ir.Attr("clip", ir.AttributeType.FLOATS, [lo, hi])
        node.replace_input_with(0, new_a)
        node.replace_input_with(1, new_b)
        node.attributes["alg"] = ir.Attr("alg", ir.AttributeType.STRING, node.op_type.lower())
        _set_float(node, "a_scale", a_enc.scale)
        if b_enc.is_int8:
            _set_float(node, "b_scale", b_enc.scale)
        _set_int(node, "y_type", y_enc.dtype)
        if y_enc.is_int8:
            _set_float(node, "y_scale", y_enc.scale)
        node.domain, node.op_type, node.version = ops.DOMAIN, "Binary", None
        b.enc[id(out)] = y_enc
        out.type = ir.TensorType(IR_TYPE[y_enc.dtype])

    def _float_outputs(self, b: Borders, graph: ir.Graph) -> None:
        for i, out in enumerate(list(graph.outputs)):
            if not b.encoding(out).is_int8:
                continue
            name = out.name
            dq = ir.node(
                "DequantizeLinear",
                [out, b._scale(name, b.encoding(out).scale), b._zp(name, b.encoding(out))],
                name=f"{name}/dequantize",
            )
            graph.append(dq)
            out.name = b._fresh(f"{name}_int8")
            dq.outputs[0].name = name
            dq.outputs[0].shape = out.shape
            dq.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
            graph.outputs[i] = dq.outputs[0]
            b.inserted += 1
