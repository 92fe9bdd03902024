"""Write a quantization plan with calibrated scales as a standard ONNX QDQ model.

The layout follows onnxruntime's quantize_static QDQ format, so onnxruntime runs the file as is and
the converter can read every scale from a QuantizeLinear -> DequantizeLinear pair:
- activation t: t -> QuantizeLinear(t_scale, t_zero_point) -> DequantizeLinear -> every consumer
  (excluded nodes keep reading the float t; a graph output keeps its float value);
- weight w: int8 initializer w_quantized -> DequantizeLinear(axis) -> the quantized node; per-channel
  scales and int8 zero points of the channel count; the float w is dropped once nothing else reads it;
- biases stay float; scales are float32 scalars, zero points uint8/int8 scalars equal to 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from int8kit.quantize.plan import QuantPlan
from int8kit.quantize.scheme import QParams, quantize_weight

logger = logging.getLogger(__name__)

QDQ_MIN_OPSET = 13  # per-axis DequantizeLinear


class _Names:
    """Fresh tensor/node names that collide with nothing in the graph."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.taken = {t.name for t in graph.initializer} | {v.name for v in graph.input}
        self.taken |= {v.name for v in graph.output} | {n.name for n in graph.node}
        self.taken |= {o for n in graph.node for o in n.output}

    def __call__(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


def write_qdq(model: onnx.ModelProto, plan: QuantPlan, qparams: Mapping[str, QParams]) -> onnx.ModelProto:
    """A new model with QDQ pairs for `plan.activations` (scales from `qparams`) and int8 weights."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < QDQ_MIN_OPSET:
        raise ValueError(f"QDQ with per-channel weights needs opset >= {QDQ_MIN_OPSET}, model has {opset}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    names = _Names(graph)
    excluded = set(plan.excluded_nodes)
    inits = {t.name: t for t in graph.initializer}
    new_inits: list[onnx.TensorProto] = []

    # Weights: one DequantizeLinear per (initializer, axis), placed first.
    head: list[onnx.NodeProto] = []
    weight_out: dict[tuple[str, int | None], str] = {}
    by_name = {n.name: n for n in graph.node}
    for node_name, index, spec in plan.weight_uses:
        key = (spec.name, spec.axis if spec.per_channel else None)
        if key not in weight_out:
            w = numpy_helper.to_array(inits[spec.name])
            if spec.per_channel:
                q, scales = quantize_weight(w, spec.axis)
            else:
                q, scales = quantize_weight(w.reshape(1, -1), 0)
                q, scales = q.reshape(w.shape), scales.reshape(())
            axis = {"axis": spec.axis} if spec.per_channel else {}
            q_name, s_name = names(f"{spec.name}_quantized"), names(f"{spec.name}_scale")
            z_name = names(f"{spec.name}_zero_point")
            new_inits += [
                numpy_helper.from_array(q, q_name),
                numpy_helper.from_array(scales, s_name),
                numpy_helper.from_array(np.zeros(scales.shape, np.int8), z_name),
            ]
            dq_out = names(f"{spec.name}_DequantizeLinear_Output")
            head.append(
                helper.make_node(
                    "DequantizeLinear",
                    [q_name, s_name, z_name],
                    [dq_out],
                    name=names(f"{spec.name}_DequantizeLinear"),
                    **axis,
                )
            )
            weight_out[key] = dq_out
        by_name[node_name].input[index] = weight_out[key]

    # Activations: Q -> DQ right after the producer (graph inputs: at the top).
    after: dict[str, list[onnx.NodeProto]] = {}
    renamed: dict[str, str] = {}
    for t in plan.activations:
        qp = qparams[t]
        s_name, z_name = names(f"{t}_scale"), names(f"{t}_zero_point")
        zp_dtype = np.uint8 if qp.dtype == "uint8" else np.int8
        new_inits += [
            numpy_helper.from_array(np.array(qp.scale, dtype=np.float32), s_name),
            numpy_helper.from_array(np.array(0, dtype=zp_dtype), z_name),
        ]
        q_out, dq_out = names(f"{t}_QuantizeLinear_Output"), names(f"{t}_DequantizeLinear_Output")
        pair = [
            helper.make_node("QuantizeLinear", [t, s_name, z_name], [q_out], name=names(f"{t}_QuantizeLinear")),
            helper.make_node(
                "DequantizeLinear", [q_out, s_name, z_name], [dq_out], name=names(f"{t}_DequantizeLinear")
            ),
        ]
        after[t] = pair
        renamed[t] = dq_out

    for node in graph.node:
        if node.name in excluded:
            continue
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]

    nodes = list(head)
    for v in graph.input:
        nodes += after.get(v.name, [])
    for node in graph.node:
        nodes.append(node)
        for o in node.output:
            nodes += after.get(o, [])
    del graph.node[:]
    graph.node.extend(nodes)

    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    dropped = len(graph.initializer) - len(kept)
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    # Inputs listed for old-style (IR < 4) initializers that were dropped must go too.
    live_inputs = [v for v in graph.input if v.name not in inits or v.name in used]
    del graph.input[:]
    graph.input.extend(live_inputs)
    logger.info(
        "QDQ model: %d activation pairs, %d int8 weights, %d float weights dropped",
        len(plan.activations),
        len(weight_out),
        dropped,
    )
    return out
