"""Exclude named nodes from quantization in a QDQ model, as a QDQ tool would, and mark them.

`quantize --exclude-nodes` and the accuracy budget (int8kit.budget) both use it. The choice travels in the
QDQ model as node metadata, so `int8kit convert` honours it and onnxruntime ignores it.
"""

from __future__ import annotations

import onnx

from int8kit.errors import ConfigError

KEEP_FP32_KEY = "int8kit.keep_fp32"  # the converter's place_int8.KEEP_FP32_KEY


def keep_fp32(qdq: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    """A copy of `qdq` in which the nodes called `names` are excluded from quantization.

    As a QDQ tool excludes a node: it reads its activations in float (its inputs skip their Q -> DQ
    pairs) and its weights in float (the dequantized initializers), so the file itself says what runs
    FP32 and every runtime (onnxruntime, the converter) computes the same thing. The node is also marked,
    so the conversion summary names the reason.
    """
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    wanted = set(names)
    graph = out.graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.name not in wanted:
            continue
        node.metadata_props.add(key=KEEP_FP32_KEY, value="1")
        wanted.discard(node.name)
        for i, name in enumerate(node.input):
            node.input[i] = _float_source(name, producer, inits, graph)
    if wanted:
        raise ConfigError(f"no node named {', '.join(sorted(wanted))} in the QDQ model")
    _drop_dead_nodes(graph)
    return out


def _float_source(name: str, producer: dict, inits: dict, graph: onnx.GraphProto) -> str:
    """The float tensor a DequantizeLinear output stands for: the QuantizeLinear's input for an activation
    pair, a new float initializer for a quantized weight; other names unchanged."""
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return name
    q = producer.get(dq.input[0])
    if q is not None and q.op_type == "QuantizeLinear":
        return q.input[0]
    if dq.input[0] in inits and all(i in inits for i in dq.input[1:] if i):
        from onnx import numpy_helper

        from int8kit.convert.remove_qdq import dequantize

        arrays = [numpy_helper.to_array(inits[i]) if i else None for i in dq.input]
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        zero_point = arrays[2] if len(arrays) > 2 else None
        value = dequantize(arrays[0], arrays[1], zero_point, axis)
        float_name = f"{name}_fp32"
        if float_name not in inits:
            tensor = numpy_helper.from_array(value, float_name)
            graph.initializer.append(tensor)
            inits[float_name] = tensor
        return float_name
    return name


def reads_quantized_activations(qdq: onnx.ModelProto) -> list[str]:
    """Names of the nodes (graph order) that read an activation through a Q -> DQ pair."""
    producer = {o: n for n in qdq.graph.node for o in n.output}
    names = []
    for node in qdq.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for name in node.input:
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear" and producer.get(dq.input[0]) is not None:
                names.append(node.name)
                break
    return names


def _drop_dead_nodes(graph: onnx.GraphProto) -> None:
    """Remove Q/DQ nodes nothing reads any more (and initializers only they read)."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [
            n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in used
        ]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
