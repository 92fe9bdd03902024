"""Refuse, before any rewriting, the models `convert` would silently turn into a wrong answer.

A QDQ model is only as good as its scales: a zero, negative, NaN or infinite scale on an activation
or a weight writes NaN or garbage into the INT8 model and the conversion would still "succeed". An
already converted int8kit model has no Q/DQ pairs left to read ranges from, and an FP32 model with no
Q/DQ at all would come out with zero INT8 ops. Each case is a ModelError naming the node and tensor.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import ModelError
from int8kit.ir.graph import const_array

logger = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# onnxruntime's other two formats compute on integers inside each op instead of marking float ops with Q/DQ.
QOPERATOR_OPS = ("QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearConcat")
DYNAMIC_OPS = ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul")


def _is_qdq(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx") and node.op_type in QDQ_OPS


def _bad_scale(node: ir.Node) -> str | None:
    """Why the node's constant scale cannot be used, or None (non-constant scales are left to later passes)."""
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    scale = const_array(node.inputs[1])
    if scale is None:
        return None
    flat = np.asarray(scale, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~(np.isfinite(flat) & (flat > 0)))
    if not bad.size:
        return None
    k = int(bad[0])
    name = node.inputs[1].name
    where = f"{name}[{k}]" if flat.size > 1 else name
    more = f" ({bad.size} of {flat.size} channels bad)" if bad.size > 1 else ""
    data = node.inputs[0].name if node.inputs[0] is not None else "?"
    return (
        f"{node.op_type} {node.name!r} on tensor {data!r} has scale {where} = {flat[k]:g}{more}; "
        "scales must be finite and > 0 (re-quantize the model)"
    )


def _other_format(node: ir.Node) -> str | None:
    """Why a node from a quantized format other than QDQ cannot be converted, or None."""
    if node.op_type in QOPERATOR_OPS or (node.op_type.startswith("QLinear") and node.domain == "com.microsoft"):
        return (
            f"node {node.name!r} ({node.op_type}) is onnxruntime's QOperator format; int8kit converts QDQ models: "
            "quantize the FP32 model with quant_format=QuantFormat.QDQ (or int8kit quantize)"
        )
    if node.op_type in DYNAMIC_OPS:
        return (
            f"node {node.name!r} ({node.op_type}) is dynamic quantization (ranges computed at run time); int8kit "
            "converts statically calibrated QDQ models: quantize the FP32 model with quantize_static (QDQ format) "
            "or int8kit quantize"
        )
    return None


class ValidateQDQPass(ir.passes.InPlacePass):
    """Checks only, never modifies: raises ModelError on the first model-level or scale problem."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        marked = model.metadata_props.get(ops.OPTIMIZED_KEY)
        if marked is not None:
            raise ModelError(
                f"model is already converted by int8kit (metadata {ops.OPTIMIZED_KEY}={marked}); "
                "convert takes the QDQ model from `int8kit quantize` or another quantizer"
            )
        qdq = 0
        for node in ir.traversal.RecursiveGraphIterator(model.graph):
            if node.domain == ops.DOMAIN:
                raise ModelError(
                    f"model is already converted by int8kit: node {node.name!r} ({node.op_type}) is in the "
                    f"{ops.DOMAIN!r} domain; convert takes the QDQ model"
                )
            refusal = _other_format(node)
            if refusal is not None:
                raise ModelError(refusal)
            if _is_qdq(node):
                qdq += 1
                reason = _bad_scale(node)
                if reason is not None:
                    raise ModelError(reason)
        if not qdq:
            raise ModelError(
                "model has no QuantizeLinear/DequantizeLinear nodes, so there is nothing to convert to INT8: "
                "run int8kit quantize first"
            )
        logger.debug("validated %d Q/DQ nodes", qdq)
        return ir.passes.PassResult(model, modified=False)
