"""Store the weights of INT8 Conv/Dense ops as int8 with one symmetric scale per output channel.

Scales are computed on the folded weights (after conv+bn), 127 / max|W[oc]|, so folding never
stretches a range the fake-quant model calibrated. Biases stay float: oneDNN adds them after
applying x_scale * w_scale.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.convert.place_int8 import is_compute, is_int8
from int8kit.ir._graph import add_initializer, const_array, drop_unused_initializers, taken_names

logger = logging.getLogger(__name__)


def per_channel_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, scales) with w ~= q * scale[oc] along axis 0."""
    flat = w.reshape(w.shape[0], -1).astype(np.float32)
    absmax = np.abs(flat).max(axis=1)
    scales = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(flat / scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scales


class QuantizeWeightsPass(ir.passes.InPlacePass):
    """Float weights of INT8 Conv/Dense -> int8 initializers plus a w_scales attribute."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        taken = taken_names(graph)
        count = 0
        for node in graph:
            if not (is_compute(node) and is_int8(node)):
                continue
            w_value = node.inputs[1]
            w = const_array(w_value)
            if w is None or w.dtype == np.int8:
                continue
            q, scales = per_channel_int8(w)
            node.replace_input_with(1, add_initializer(graph, f"{w_value.name}_int8", q, taken))
            node.attributes["w_scales"] = ir.Attr("w_scales", ir.AttributeType.FLOATS, scales.tolist())
            drop_unused_initializers(graph, [w_value])
            count += 1
        logger.info("quantized the weights of %d ops", count)
        return ir.passes.PassResult(model, modified=count > 0)
