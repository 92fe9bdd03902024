"""Evaluate one standard ONNX node on numpy inputs with onnx's reference evaluator (the spec's semantics).

Used at compile time by the runtime (shape arithmetic, see runtime.host_eval) and by the intake's
constant folding. The reference evaluator implements some ops only from a later opset than a model
may declare (QuantizeLinear/DequantizeLinear from 19 in recent onnx releases), with the same meaning
for what int8kit reads; those nodes are evaluated at that opset.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

# Ops whose reference implementation starts at a later opset than their semantics for int8/uint8 data.
MIN_REFERENCE_OPSET = {"QuantizeLinear": 19, "DequantizeLinear": 19}


def evaluate(node: ir.Node, inputs: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    """The outputs of one standard ONNX node on numpy inputs (None for an omitted optional input)."""
    from onnx.reference import ReferenceEvaluator

    proto = ir.serde.serialize_node(node)
    in_names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    out_names = [f"out{i}" for i in range(len(node.outputs))]
    del proto.input[:]
    proto.input.extend(in_names)
    del proto.output[:]
    proto.output.extend(out_names)
    graph = onnx.helper.make_graph(
        [proto],
        "host_eval",
        [
            onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
            for n, x in zip(in_names, inputs, strict=True)
            if x is not None
        ],
        [onnx.helper.make_empty_tensor_value_info(n) for n in out_names],
    )
    opset = max(opset, MIN_REFERENCE_OPSET.get(node.op_type, 0))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {n: x for n, x in zip(in_names, inputs, strict=True) if x is not None}
    results = ReferenceEvaluator(model).run(None, feeds)
    return [np.asarray(r) for r in results]
