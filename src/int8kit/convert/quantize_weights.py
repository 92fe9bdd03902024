"""Store the weights of INT8 Conv/Dense ops as int8 with one scale per output channel.

Weights that the QDQ file quantized come back onto the file's own int8 grid (int8kit.ir.weight_grid),
scaled per channel by any BatchNorm folded into them since: the INT8 model multiplies by exactly the
integers the fake-quant model does. Weights the file left in float are quantized here only when the
user asked for it (ConvertConfig.quantize_float_weights), symmetric per channel, 127 / max|W[oc]|.
Biases stay float: oneDNN adds them after applying x_scale * w_scale.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.convert.place_int8 import is_compute, is_int8
from int8kit.errors import ModelError
from int8kit.ir.contract import ContractPass
from int8kit.ir.graph import add_initializer, const_array, drop_unused_initializers, taken_names
from int8kit.ir.weight_grid import WeightGrid, grid_of
from int8kit.metadata import GRID_KEY, PRECISION_KEY

logger = logging.getLogger(__name__)


def on_grid(w: np.ndarray, grid: WeightGrid, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, per-output-channel scales) of `w` on its file's grid; an error if it is not on it."""
    scales = grid.per_channel(w, 0)
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    safe = np.where(scales != 0, scales, 1.0)
    q = flat / safe[:, None]
    rounded = np.rint(q)
    if np.abs(q - rounded).max(initial=0.0) > 1e-2 or rounded.min(initial=0) < -128 or rounded.max(initial=0) > 127:
        raise ModelError(f"weights {name!r} left their QDQ int8 grid during conversion (internal error)")
    negative = scales < 0  # a BatchNorm with negative gamma: flip the channel so scales stay positive
    rounded[negative] = -rounded[negative]
    if rounded.max(initial=0) > 127:
        raise ModelError(f"weights {name!r}: a flipped channel holds -128, which int8 cannot negate")
    return rounded.astype(np.int8).reshape(w.shape), np.abs(scales).astype(np.float32)


def per_channel_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights, scales) with w ~= q * scale[oc] along axis 0."""
    flat = w.reshape(w.shape[0], -1).astype(np.float32)
    absmax = np.abs(flat).max(axis=1)
    scales = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(flat / scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scales


class QuantizeWeightsPass(ContractPass):
    """Float weights of INT8 Conv/Dense -> int8 initializers plus a w_scales attribute."""

    reads = (
        PRECISION_KEY,
        GRID_KEY,
    )

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
            grid = grid_of(w_value)
            q, scales = on_grid(w, grid, w_value.name) if grid is not None else per_channel_int8(w)
            node.replace_input_with(1, add_initializer(graph, f"{w_value.name}_int8", q, taken))
            node.attributes["w_scales"] = ir.Attr("w_scales", ir.AttributeType.FLOATS, scales.tolist())
            drop_unused_initializers(graph, [w_value])
            count += 1
        logger.info("quantized the weights of %d ops", count)
        return ir.passes.PassResult(model, modified=count > 0)
