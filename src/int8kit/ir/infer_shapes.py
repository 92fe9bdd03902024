"""Give every value a dtype and shape where they can be derived.

The quantizer needs dtypes to pick which tensors to observe, the converter needs ranks (Gemm vs
MatMul, channel axes), and the dot view labels edges with them. onnx's shape inference does the
standard ops; the int8kit-domain ops it does not know get their output dtype from their attributes
(y_type) or, for the data-movement rule, from their input, so converted models are labelled too.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from int8kit.ops import DOMAIN

logger = logging.getLogger(__name__)


def _infer_int8kit_dtypes(model: ir.Model) -> bool:
    modified = False
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.domain != DOMAIN or not node.outputs:
            continue
        out = node.outputs[0]
        if out.dtype is not None:
            continue
        y_type = node.attributes.get_int("y_type", None)
        if y_type is not None:
            out.dtype = ir.DataType(y_type)
        elif node.op_type in ("Conv", "Dense"):
            out.dtype = ir.DataType.FLOAT
        else:
            continue
        if node.op_type == "Requantize" and out.shape is None and node.inputs[0] is not None:
            out.shape = node.inputs[0].shape
        modified = True
    return modified


class InferShapesPass(ir.passes.InPlacePass):
    """onnx shape inference (non-strict: unknown ops are skipped, not fatal) plus int8kit-op dtypes."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        result = ShapeInferencePass(check_type=False, strict_mode=False, data_prop=True)(model)
        modified = _infer_int8kit_dtypes(model) or result.modified
        unknown = [v.name for node in model.graph for v in node.outputs if v.dtype is None or v.shape is None]
        if unknown:
            logger.info("%d values still lack dtype or shape, e.g. %s", len(unknown), unknown[:5])
        return ir.passes.PassResult(model, modified=modified)
