"""Fold inference-mode BatchNormalization into the Conv before it, or lower it to Mul + Add.

A per-channel Mul/Div by a constant between the Conv and the BN (torch's QAT ConvBn export) folds along.

BN after a conv is a per-output-channel affine map, so it costs nothing once merged into the conv's
weights and bias; merging before quantization also means the int8 weight scales are computed on the
weights that really run. A BN with no conv in front (after a pool, a concat, a graph input) cannot
merge; it becomes Mul + Add with constant per-channel tensors, ops the engine runs (and fuses).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from int8kit.ir.graph import (
    add_initializer,
    const_array,
    drop_unused_constant_nodes,
    drop_unused_initializers,
    fresh_name,
    take_over,
    taken_names,
)
from int8kit.ir.weight_grid import grid_of, scaled, set_grid

logger = logging.getLogger(__name__)


def _bn_affine(bn: ir.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) with BN(x) = x * scale + shift per channel, or None if BN is not constant."""
    if len(bn.inputs) != 5 or bn.domain != "":
        return None
    if bn.attributes.get_int("training_mode", 0):
        return None
    if any(out.uses() or out.is_graph_output() for out in bn.outputs[1:]):
        return None  # running mean/var outputs are read: a training graph
    params = [const_array(v) for v in bn.inputs[1:]]
    if any(p is None for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    eps = bn.attributes.get_float("epsilon", 1e-5)
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _foldable_conv(bn: ir.Node) -> ir.Node | None:
    """The Conv producing BN's input, when its output feeds only the BN and its weights are constant."""
    x = bn.inputs[0]
    conv = x.producer() if x is not None else None
    if conv is None or conv.op_type != "Conv" or conv.domain != "" or conv.graph is not bn.graph:
        return None
    if len(x.uses()) != 1 or x.is_graph_output():
        return None
    if const_array(conv.inputs[1]) is None:
        return None
    if len(conv.inputs) > 2 and conv.inputs[2] is not None and const_array(conv.inputs[2]) is None:
        return None
    return conv


def _channel_scaling(bn: ir.Node) -> tuple[ir.Node, np.ndarray] | None:
    """(Mul/Div node, per-channel factor) when BN reads Conv -> Mul/Div by a constant, as torch's QAT ConvBn
    exports it (the conv of BN-scaled fake-quantized weights divided back by the scale, then BN): the
    factor folds into the weights with BN's. None otherwise."""
    x = bn.inputs[0]
    op = x.producer() if x is not None else None
    if op is None or op.domain != "" or op.op_type not in ("Mul", "Div") or len(x.uses()) != 1 or x.is_graph_output():
        return None
    data, const = op.inputs[0], const_array(op.inputs[1])
    if const is None or data is None or const_array(data) is not None:
        return None
    conv = data.producer()
    channels = const_array(conv.inputs[1]).shape[0] if conv is not None and _foldable_conv(op) is conv else None
    if channels is None or const.size not in (1, channels) or const.ndim > 4:
        return None
    if const.size == channels and const.reshape((1,) * (4 - const.ndim) + const.shape).shape[1] != channels:
        return None  # broadcasts along another axis than the channels
    factor = np.broadcast_to(const.astype(np.float64).reshape(-1), (channels,))
    return op, (1.0 / factor if op.op_type == "Div" else factor)


class FoldBatchNormPass(ir.passes.InPlacePass):
    """Conv -> BN becomes Conv with W' = W * s, b' = (b - mean) * s + beta; other BNs -> Mul + Add."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        taken = taken_names(graph)
        folded = lowered = 0
        for bn in [n for n in graph if n.op_type == "BatchNormalization" and n.domain == ""]:
            affine = _bn_affine(bn)
            if affine is None:
                logger.warning("BatchNormalization %r has non-constant parameters; left as is", bn.name)
                continue
            scale, shift = affine
            old_params = list(bn.inputs[1:])
            conv = _foldable_conv(bn)
            scaling = _channel_scaling(bn) if conv is None else None
            if scaling is not None:  # Conv -> Mul/Div(c) -> BN: BN(conv * f) = conv * (f * scale) + shift
                op, factor = scaling
                conv = _foldable_conv(op)
                take_over(op.outputs[0], op.inputs[0])
                old_params.append(op.inputs[1])
                graph.remove(op, safe=True)
                scale = (scale * factor).astype(scale.dtype)
            if conv is not None:
                self._fold(graph, conv, bn, scale, shift, taken)
                folded += 1
            elif self._lower(model, bn, scale, shift, taken):
                lowered += 1
            else:
                continue
            drop_unused_initializers(graph, old_params)
            drop_unused_constant_nodes(graph, old_params)
        if folded or lowered:
            logger.info("BatchNormalization: %d folded into Conv, %d lowered to Mul+Add", folded, lowered)
        return ir.passes.PassResult(model, modified=bool(folded or lowered))

    @staticmethod
    def _fold(graph: ir.Graph, conv: ir.Node, bn: ir.Node, scale, shift, taken: set[str]) -> None:
        w_value = conv.inputs[1]
        b_value = conv.inputs[2] if len(conv.inputs) > 2 else None
        w = const_array(w_value)
        bias = const_array(b_value) if b_value is not None else np.zeros(w.shape[0])
        new_w = (w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        new_b = (bias.astype(np.float64) * scale + shift).astype(w.dtype)
        base = conv.name or (w_value.name or "conv")
        if len(conv.inputs) < 3:
            conv.resize_inputs(3)
        new_w_value = add_initializer(graph, f"{w_value.name}_bnfold", new_w, taken)
        grid = grid_of(w_value)
        if grid is not None:
            set_grid(new_w_value, scaled(grid, w, scale))
        conv.replace_input_with(1, new_w_value)
        conv.replace_input_with(2, add_initializer(graph, f"{base}_bias_bnfold", new_b, taken))
        drop_unused_initializers(graph, [w_value, b_value])
        drop_unused_constant_nodes(graph, [w_value, b_value])
        y = bn.outputs[0]
        take_over(y, conv.outputs[0], rename=True, carry_facts=True)
        graph.remove(bn, safe=True)

    @staticmethod
    def _lower(model: ir.Model, bn: ir.Node, scale, shift, taken: set[str]) -> bool:
        graph = model.graph
        x = bn.inputs[0]
        if x is not None and x.shape is None:
            # The per-channel constants need the input's rank; exports rarely store it.
            ShapeInferencePass(check_type=False, strict_mode=False)(model)
        if x is None or x.shape is None:
            logger.warning("BatchNormalization %r: input rank unknown, cannot lower to Mul+Add", bn.name)
            return False
        dtype = x.dtype.numpy() if x.dtype is not None else np.float32
        channel_shape = (-1,) + (1,) * max(len(x.shape) - 2, 0)
        base = bn.name or "bn"
        mul_c = add_initializer(graph, f"{base}_scale", scale.astype(dtype).reshape(channel_shape), taken)
        add_c = add_initializer(graph, f"{base}_shift", shift.astype(dtype).reshape(channel_shape), taken)
        mul = ir.node("Mul", [x, mul_c], name=fresh_name(f"{base}_mul", taken))
        mul.outputs[0].name = fresh_name(f"{base}_mul_out", taken)
        mul.outputs[0].type = x.type
        mul.outputs[0].shape = x.shape
        add = ir.node("Add", [mul.outputs[0], add_c], name=fresh_name(f"{base}_add", taken))
        graph.insert_after(bn, [mul, add])
        add.outputs[0].shape = x.shape
        add.outputs[0].type = x.type
        take_over(bn.outputs[0], add.outputs[0], rename=True, carry_facts=True)
        graph.remove(bn, safe=True)
        return True
