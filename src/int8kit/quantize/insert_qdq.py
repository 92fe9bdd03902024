"""Insert a quantization plan with calibrated scales as standard ONNX Q/DQ pairs: an onnx_ir pass.

The counterpart of convert's remove_qdq. The layout follows onnxruntime's quantize_static QDQ format, so
onnxruntime runs the file as is and the converter can read every scale from a QuantizeLinear ->
DequantizeLinear pair:
- activation t: t -> QuantizeLinear(t_scale, t_zero_point) -> DequantizeLinear -> every consumer
  (excluded nodes keep reading the float t; a graph output keeps its float value);
- weight w: int8 initializer w_quantized -> DequantizeLinear(axis) -> the quantized node; per-channel
  scales and int8 zero points of the channel count; the float w is dropped once nothing else reads it;
- biases stay float; scales are float32 scalars, zero points uint8/int8 scalars (0 unless the scheme
  chose an asymmetric grid).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx_ir as ir

from int8kit.errors import ModelError
from int8kit.quantize.bias_correction import quantized_weight
from int8kit.quantize.plan import QuantPlan
from int8kit.quantize.scheme import QParams

logger = logging.getLogger(__name__)

QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear


class _Names:
    """Fresh tensor/node names that collide with nothing in the graph."""

    def __init__(self, graph: ir.Graph) -> None:
        self.taken = set(graph.initializers) | {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
        self.taken |= {n.name for n in graph} | {o.name for n in graph for o in n.outputs}

    def __call__(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


def _initializer(graph: ir.Graph, array: np.ndarray, name: str) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
    value.dtype, value.shape = value.const_value.dtype, ir.Shape(array.shape)
    graph.register_initializer(value)
    return value


def _copy(shape: ir.Shape | None) -> ir.Shape | None:
    return None if shape is None else ir.Shape(shape)


class InsertQDQPass(ir.passes.InPlacePass):
    """Q/DQ pairs for `plan.activations` (scales from `qparams`) and int8 weights for `plan.weight_uses`."""

    def __init__(self, plan: QuantPlan, qparams: Mapping[str, QParams]) -> None:
        super().__init__()
        self.plan = plan
        self.qparams = qparams

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        opset = model.opset_imports.get("", model.opset_imports.get("ai.onnx", 0))
        if opset < QDQ_MIN_OPSET:
            raise ModelError(f"QDQ with per-channel weights needs opset >= {QDQ_MIN_OPSET}, model has {opset}")
        graph = model.graph
        names = _Names(graph)
        self._activations(graph, names)
        weights = self._weights(graph, names)  # second, so the weights' DequantizeLinear nodes come first
        logger.info("QDQ model: %d activation pairs, %d int8 weights", len(self.plan.activations), weights)
        return ir.passes.PassResult(model, modified=bool(weights or self.plan.activations))

    def _weights(self, graph: ir.Graph, names: _Names) -> int:
        """One DequantizeLinear per (initializer, axis), placed first."""
        by_name = {n.name: n for n in graph}
        made: dict[tuple[str, int | None], ir.Value] = {}
        head: list[ir.Node] = []
        for node_name, index, spec in self.plan.weight_uses:
            key = (spec.name, spec.axis if spec.per_channel else None)
            if key not in made:
                w = graph.initializers[spec.name].const_value.numpy()
                q, scales = quantized_weight(w, spec)
                inputs = [
                    _initializer(graph, q, names(f"{spec.name}_quantized")),
                    _initializer(graph, scales, names(f"{spec.name}_scale")),
                    _initializer(graph, np.zeros(scales.shape, np.int8), names(f"{spec.name}_zero_point")),
                ]
                attrs = {"axis": spec.axis} if spec.per_channel else None
                dq = ir.node("DequantizeLinear", inputs, attrs, name=names(f"{spec.name}_DequantizeLinear"))
                out = dq.outputs[0]
                out.name = names(f"{spec.name}_DequantizeLinear_Output")
                out.dtype, out.shape = ir.DataType.FLOAT, ir.Shape(w.shape)
                head.append(dq)
                made[key] = out
            by_name[node_name].replace_input_with(index, made[key])
        if head:
            graph.insert_before(next(iter(graph)), head)
        for name in {spec.name for _, _, spec in self.plan.weight_uses}:
            value = graph.initializers[name]
            if not list(value.uses()) and not value.is_graph_output():
                graph.initializers.pop(name)  # the float weight nothing reads any more
        return len(made)

    def _activations(self, graph: ir.Graph, names: _Names) -> None:
        """Q -> DQ right after the producer (graph inputs: at the top); consumers read the DQ output."""
        excluded = set(self.plan.excluded_nodes)
        values = {v.name: v for v in graph.inputs} | {o.name: o for n in graph for o in n.outputs}
        for t in self.plan.activations:
            value, qp = values[t], self.qparams[t]
            uses = [(u.node, u.idx) for u in value.uses() if u.node.name not in excluded]
            zp_dtype = np.uint8 if qp.dtype == "uint8" else np.int8
            scale = _initializer(graph, np.array(qp.scale, dtype=np.float32), names(f"{t}_scale"))
            zero = _initializer(graph, np.array(qp.zero_point, dtype=zp_dtype), names(f"{t}_zero_point"))
            q = ir.node("QuantizeLinear", [value, scale, zero], name=names(f"{t}_QuantizeLinear"))
            q.outputs[0].name = names(f"{t}_QuantizeLinear_Output")
            q.outputs[0].dtype, q.outputs[0].shape = zero.dtype, _copy(value.shape)
            dq = ir.node("DequantizeLinear", [q.outputs[0], scale, zero], name=names(f"{t}_DequantizeLinear"))
            dq.outputs[0].name = names(f"{t}_DequantizeLinear_Output")
            dq.outputs[0].dtype, dq.outputs[0].shape = ir.DataType.FLOAT, _copy(value.shape)
            for node, index in uses:
                node.replace_input_with(index, dq.outputs[0])
            producer = value.producer()
            first = next(iter(graph), None)
            if producer is not None:
                graph.insert_after(producer, [q, dq])
            elif first is not None:
                graph.insert_before(first, [q, dq])
            else:
                graph.extend([q, dq])
