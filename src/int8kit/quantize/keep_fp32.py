"""Exclude named nodes from quantization in a QDQ model, as a QDQ tool would, and mark them.

`quantize --exclude-nodes` and the accuracy budget (int8kit.budget) both use it. The choice travels in the
QDQ model as node metadata, so `int8kit convert` honours it and onnxruntime ignores it.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir

from int8kit.errors import ConfigError
from int8kit.metadata import KEEP_FP32_KEY

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def keep_fp32(qdq: ir.Model | onnx.ModelProto, names: tuple[str, ...]) -> ir.Model | onnx.ModelProto:
    """A copy of `qdq` (of the same type) in which the nodes called `names` are excluded from quantization.

    As a QDQ tool excludes a node: it reads its activations in float (its inputs skip their Q -> DQ
    pairs) and its weights in float (the dequantized initializers), so the file itself says what runs
    FP32 and every runtime (onnxruntime, the converter) computes the same thing. The node is also marked,
    so the conversion summary names the reason.
    """
    if isinstance(qdq, onnx.ModelProto):
        return ir.serde.serialize_model(keep_fp32(ir.serde.deserialize_model(qdq), names))
    out = qdq.clone()
    wanted = set(names)
    graph = out.graph
    for node in graph:
        if node.name not in wanted:
            continue
        node.metadata_props[KEEP_FP32_KEY] = "1"
        wanted.discard(node.name)
        for i, value in enumerate(node.inputs):
            source = _float_source(value, graph)
            if source is not value:
                node.replace_input_with(i, source)
    if wanted:
        raise ConfigError(f"no node named {', '.join(sorted(wanted))} in the QDQ model")
    _drop_dead_nodes(graph)
    return out


def _float_source(value: ir.Value | None, graph: ir.Graph) -> ir.Value | None:
    """The float tensor a DequantizeLinear output stands for: the QuantizeLinear's input for an activation
    pair, a new float initializer for a quantized weight; other values unchanged."""
    dq = None if value is None else value.producer()
    if dq is None or dq.op_type != "DequantizeLinear":
        return value
    q = dq.inputs[0].producer()
    if q is not None and q.op_type == "QuantizeLinear":
        return q.inputs[0]
    if all(i is None or i.is_initializer() for i in dq.inputs):
        from int8kit.convert.remove_qdq import dequantize

        float_name = f"{value.name}_fp32"
        if float_name not in graph.initializers:
            arrays = [None if i is None else i.const_value.numpy() for i in dq.inputs]
            axis = dq.attributes.get("axis")
            zero_point = arrays[2] if len(arrays) > 2 else None
            array = dequantize(arrays[0], arrays[1], zero_point, 1 if axis is None else axis.as_int())
            fp32 = ir.Value(name=float_name, const_value=ir.tensor(array, name=float_name))
            fp32.dtype, fp32.shape = ir.DataType.FLOAT, ir.Shape(array.shape)
            graph.register_initializer(fp32)
        return graph.initializers[float_name]
    return value


def reads_quantized_activations(qdq: ir.Model | onnx.ModelProto) -> list[str]:
    """Names of the nodes (graph order) that read an activation through a Q -> DQ pair."""
    if isinstance(qdq, onnx.ModelProto):
        qdq = ir.serde.deserialize_model(qdq)
    names = []
    for node in qdq.graph:
        if node.op_type in QDQ_OPS:
            continue
        for value in node.inputs:
            dq = None if value is None else value.producer()
            if dq is not None and dq.op_type == "DequantizeLinear" and dq.inputs[0].producer() is not None:
                names.append(node.name)
                break
    return names


def has_qdq(model: ir.Model) -> bool:
    return any(node.op_type in QDQ_OPS for node in model.graph)


def _drop_dead_nodes(graph: ir.Graph) -> None:
    """Remove Q/DQ nodes nothing reads any more (and initializers nothing reads)."""
    while dead := [
        n
        for n in graph
        if n.op_type in QDQ_OPS and not list(n.outputs[0].uses()) and not n.outputs[0].is_graph_output()
    ]:
        for n in dead:
            graph.remove(n, safe=True)
    for name, value in list(graph.initializers.items()):
        if not list(value.uses()) and not value.is_graph_output():
            graph.initializers.pop(name)
