"""Compile-time evaluation of the nodes whose inputs are all known when a program is compiled.

The engine compiles one program per input shape, so a `Shape` is a constant there, and so is every
node computed only from shapes and initializers: the Shape -> Gather -> Unsqueeze -> Concat -> Reshape
arithmetic that exporters write for `x.view(x.size(0), -1)` or a channel shuffle. Such nodes are run
once, on numpy, by onnx's reference evaluator (the spec's own semantics, not a copy of them), and their
results feed the lowerings as constants.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnx_ir as ir

logger = logging.getLogger(__name__)

# Ops evaluated on the host whenever all their inputs are known; many have no oneDNN lowering at all.
HOST_ONLY_OPS = (
    "Shape",
    "Size",
    "Gather",
    "Cast",
    "ConstantOfShape",
    "Range",
    "Equal",
    "Where",
    "Expand",
    "ReduceProd",
    "Floor",
    "Ceil",
    "Less",
    "Greater",
    "Not",
    "Neg",
    "Constant",
    "Slice",
)


def is_standard(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx")


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
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {n: x for n, x in zip(in_names, inputs, strict=True) if x is not None}
    results = ReferenceEvaluator(model).run(None, feeds)
    return [np.asarray(r) for r in results]
