"""Fold nodes computed only from constants into initializers (Reshape of a bias, Mul of two constants...).

Exporters leave constant arithmetic in the graph: paddle2onnx reshapes every bias to [1, C, 1, 1] before
its Add. Left there, the quantizer sees a computed tensor and puts a Q/DQ pair on it, and the fusions do
not recognise a constant bias. Each such node is evaluated once with onnx's reference evaluator and
replaced by an initializer. QuantizeLinear/DequantizeLinear are never folded (the converter reads the
weights' int8 grid from them), nor random ops, nor results over MAX_ELEMENTS that are larger than every
input (a ConstantOfShape or Expand that would bloat the file); a large weight computed from a weight as large
(NF-Net's and BiT's weight standardisation: BatchNormalization in training mode over the weight) folds.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.evaluate import evaluate
from int8kit.ir.graph import const_array

logger = logging.getLogger(__name__)

KEPT_OPS = ("QuantizeLinear", "DequantizeLinear", "Constant")
MAX_ELEMENTS = 1 << 22


def _foldable(node: ir.Node) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type in KEPT_OPS or not node.inputs:
        return False
    if node.op_type.startswith("Random") or node.op_type in ("Multinomial", "Bernoulli"):
        return False
    if node.op_type in ("If", "Loop", "Scan"):
        return False
    return all(v is None or const_array(v) is not None for v in node.inputs) and any(v is not None for v in node.inputs)


def _to_initializer(graph: ir.Graph, out: ir.Value, result: np.ndarray) -> None:
    """Replace node output `out` by an initializer holding `result`, under the same name."""
    name = out.name
    tensor = ir.tensor(np.ascontiguousarray(result).reshape(result.shape), name=name)  # a scalar stays 0-D
    init = ir.Value(shape=ir.Shape(result.shape), type=ir.TensorType(tensor.dtype), const_value=tensor)
    out.replace_all_uses_with(init, replace_graph_outputs=True)
    out.name = None
    init.name = name
    graph.register_initializer(init)


def fold_constant_nodes(model: ir.Model) -> int:
    """Replace every foldable node whose inputs are all constants by initializers; the number folded."""
    graph = model.graph
    opset = model.opset_imports.get("", 17)
    folded = 0
    for node in list(graph):
        if not _foldable(node):
            continue
        arrays = [const_array(v) if v is not None else None for v in node.inputs]
        try:
            results = evaluate(node, arrays, opset)
        except Exception as exc:  # the reference evaluator raises many types: leave the node as it is
            logger.debug("not folding %s (%s): %s", node.name, node.op_type, exc)
            continue
        largest_input = max((a.size for a in arrays if a is not None), default=0)
        if any(r.size > max(MAX_ELEMENTS, largest_input) for r in results):
            continue
        for out, result in zip(node.outputs, results, strict=False):
            if out is not None:
                _to_initializer(graph, out, result)
        graph.remove(node, safe=True)
        folded += 1
    return folded


class FoldConstantsPass(ir.passes.InPlacePass):
    """Every node whose inputs are all constants becomes initializers holding its outputs."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        folded = fold_constant_nodes(model)
        if folded:
            logger.info("folded %d constant node(s) into initializers", folded)
        return ir.passes.PassResult(model, modified=bool(folded))
