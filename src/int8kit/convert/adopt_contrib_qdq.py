"""onnxruntime's own QuantizeLinear/DequantizeLinear (quantize_static with UseQDQContribOps=True) move into the
ONNX domain.

The com.microsoft ops compute what the ONNX ones compute (same inputs, same `axis`); onnxruntime writes them to
allow 16- and 4-bit types. Moved, they are read like any Q/DQ pair, and a type int8 cannot hold is then refused
by name like any other (gather_scales).
"""

from __future__ import annotations

import logging

import onnx_ir as ir

logger = logging.getLogger(__name__)

CONTRIB_DOMAIN = "com.microsoft"
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class AdoptContribQDQPass(ir.passes.InPlacePass):
    """com.microsoft QuantizeLinear/DequantizeLinear -> the same ops in the ONNX domain."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        moved = 0
        for node in ir.traversal.RecursiveGraphIterator(model.graph):
            if node.domain == CONTRIB_DOMAIN and node.op_type in QDQ_OPS:
                node.domain = ""
                moved += 1
        if moved:
            logger.info("read %d com.microsoft Q/DQ node(s) as the ONNX ops", moved)
        return ir.passes.PassResult(model, modified=bool(moved))
