"""Read each activation's calibrated range from its QuantizeLinear -> DequantizeLinear pair.

Works for QDQ models from any tool: int8kit's quantizer, onnxruntime's quantize_static (symmetric or
asymmetric u8/s8, per-tensor activations), NNCF, PyTorch. An asymmetric range is widened to the
symmetric one oneDNN needs (zero point 0); a uint8 pair with zero point 0 marks a non-negative tensor.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.convert.scales import set_range
from int8kit.ir._graph import const_array

logger = logging.getLogger(__name__)

QRANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def qdq_range(scale: float, zero_point: int, dtype: np.dtype) -> tuple[float, bool] | None:
    """(threshold, unsigned) of the real values a Q/DQ pair represents, or None for other types."""
    if dtype not in QRANGE:
        return None
    qmin, qmax = QRANGE[dtype]
    lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    if lo >= 0:
        return hi, True
    if zero_point == 0:
        return 127 * scale, False
    return max(-lo, hi), False


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type == op


class GatherScalesPass(ir.passes.InPlacePass):
    """Records each Q->DQ pair's range on the tensor the QuantizeLinear reads."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        found = 0
        for node in model.graph:
            if not _is(node, "QuantizeLinear") or const_array(node.inputs[0]) is not None:
                continue
            scale = const_array(node.inputs[1])
            zp = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
            dtype = zp.dtype if zp is not None else np.dtype(np.uint8)
            if scale is None or scale.size != 1 or (zp is not None and zp.size != 1):
                logger.warning("%s: per-axis or non-constant activation scale ignored", node.name)
                continue
            rng = qdq_range(float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) if zp is not None else 0, dtype)
            if rng is None:
                logger.warning("%s: %s quantization is not int8; the tensor stays FP32", node.name, dtype)
                continue
            set_range(node.inputs[0], *rng)
            found += 1
        logger.info("gathered %d activation ranges", found)
        return ir.passes.PassResult(model, modified=found > 0)
