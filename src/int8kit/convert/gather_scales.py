"""Read each activation's INT8 encoding from the QuantizeLinear that quantizes it.

Works for QDQ models from any tool: int8kit's quantizer, onnxruntime's quantize_static (symmetric or
asymmetric u8/s8, per-tensor activations), NNCF, PyTorch. The encoding (type, scale, zero point) is
recorded exactly as written; the runtime executes zero points. A pattern that cannot be honoured
(per-axis activation scales, 16-bit or 4-bit activations, non-constant parameters) is an error naming
the node, never a silent approximation.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import UnsupportedOpError
from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import Encoding, set_encoding
from int8kit.ir.graph import const_array
from int8kit.metadata import ENCODING_KEY

logger = logging.getLogger(__name__)

ONNX_TYPE = {np.dtype(np.uint8): ops.UINT8, np.dtype(np.int8): ops.INT8}


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type == op


def activation_encoding(node: ir.Node) -> Encoding:
    """The encoding a QuantizeLinear/DequantizeLinear on an activation describes (or an error naming it)."""
    scale = const_array(node.inputs[1])
    zp_value = node.inputs[2] if len(node.inputs) > 2 else None
    zp = const_array(zp_value) if zp_value is not None else None
    tensor = node.inputs[0].name
    if scale is None or (zp_value is not None and zp is None):
        raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} of {tensor!r} has non-constant parameters")
    if scale.size != 1 or (zp is not None and zp.size != 1):
        raise UnsupportedOpError(
            f"node {node.name!r}: per-axis quantization of activation {tensor!r} is not supported (only weights)"
        )
    dtype = zp.dtype if zp is not None else np.dtype(np.uint8)
    if "output_dtype" in node.attributes and zp is None:
        raise UnsupportedOpError(f"node {node.name!r}: output_dtype without a zero point is not supported")
    if dtype not in ONNX_TYPE:
        raise UnsupportedOpError(
            f"node {node.name!r}: {dtype} quantization of {tensor!r} is not supported (only uint8 and int8)"
        )
    return Encoding(ONNX_TYPE[dtype], float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) if zp is not None else 0)


class GatherScalesPass(ContractPass):
    """Records each QuantizeLinear's encoding on the activation tensor it reads."""

    writes = (ENCODING_KEY,)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        found = 0
        for node in model.graph:
            if not _is(node, "QuantizeLinear") or const_array(node.inputs[0]) is not None:
                continue
            set_encoding(node.inputs[0], activation_encoding(node))
            found += 1
        logger.info("gathered %d activation encodings", found)
        return ir.passes.PassResult(model, modified=found > 0)
