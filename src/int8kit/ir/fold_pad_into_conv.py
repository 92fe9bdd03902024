"""Fold an explicit zero Pad in front of Convs into the Convs' own `pads`.

TensorFlow- and Paddle-style exports often pad with a separate Pad node (asymmetric "SAME" padding);
the engine's convolution pads for free, and a separate Pad would cost a full copy of the activation
and break the Conv's fusion with what comes before it. Only a constant-mode Pad with value 0 that pads
spatial dims (never batch or channel), by non-negative amounts, and feeds nothing but Convs can fold.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.graph import const_array, drop_unused_constant_nodes, drop_unused_initializers

logger = logging.getLogger(__name__)


def _pad_amounts(pad: ir.Node) -> np.ndarray | None:
    """Pad's `pads` as [x1_begin, ..., x1_end, ...] over all dims, or None if it cannot fold."""
    if pad.domain != "" or pad.attributes.get_string("mode", "constant") != "constant":
        return None
    if "pads" in pad.attributes:  # opset < 11: attributes
        pads = np.array(pad.attributes.get_ints("pads"), dtype=np.int64)
        value = np.array(pad.attributes.get_float("value", 0.0))
    else:
        if len(pad.inputs) < 2:
            return None
        pads = const_array(pad.inputs[1])
        value = np.array(0.0)
        if len(pad.inputs) > 2 and pad.inputs[2] is not None:
            value = const_array(pad.inputs[2])
        if pads is None or value is None:
            return None
        pads = pads.astype(np.int64).reshape(-1)
        if len(pad.inputs) > 3 and pad.inputs[3] is not None:  # opset 18 `axes`
            pads = _expand_axes(pad, pads)
            if pads is None:
                return None
    if value.size != 1 or float(value.reshape(())) != 0.0 or pads.size % 2 or (pads < 0).any():
        return None
    rank = pads.size // 2
    if rank < 3 or pads[:2].any() or pads[rank : rank + 2].any():
        return None  # pads batch or channel, or no spatial dims
    return pads


def _expand_axes(pad: ir.Node, pads: np.ndarray) -> np.ndarray | None:
    axes = const_array(pad.inputs[3])
    x = pad.inputs[0]
    if axes is None or x is None or x.shape is None:
        return None
    rank = len(x.shape)
    full = np.zeros(2 * rank, dtype=np.int64)
    n = axes.size
    for i, axis in enumerate(axes.reshape(-1)):
        axis = int(axis) % rank
        full[axis], full[rank + axis] = pads[i], pads[n + i]
    return full


def _foldable_consumers(pad: ir.Node, rank: int) -> list[ir.Node] | None:
    out = pad.outputs[0]
    if out.is_graph_output():
        return None
    convs = []
    for use in out.uses():
        node = use.node
        if node.op_type != "Conv" or node.domain != "" or use.idx != 0:
            return None
        if node.attributes.get_string("auto_pad", "NOTSET") not in ("NOTSET", ""):
            return None
        if len(node.attributes.get_ints("pads", [0] * (2 * (rank - 2)))) != 2 * (rank - 2):
            return None
        convs.append(node)
    return convs or None


class FoldPadIntoConvPass(ir.passes.InPlacePass):
    """Adds a zero constant Pad's spatial amounts to each consuming Conv's `pads` and removes the Pad."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        count = 0
        for pad in [n for n in graph if n.op_type == "Pad"]:
            pads = _pad_amounts(pad)
            if pads is None:
                continue
            rank = pads.size // 2
            convs = _foldable_consumers(pad, rank)
            if convs is None:
                continue
            spatial = rank - 2
            extra = np.concatenate([pads[2:rank], pads[rank + 2 :]])
            for conv in set(convs):
                old = np.array(conv.attributes.get_ints("pads", [0] * (2 * spatial)), dtype=np.int64)
                conv.attributes["pads"] = ir.AttrInt64s("pads", [int(p) for p in old + extra])
                conv.replace_input_with(0, pad.inputs[0])
            params = list(pad.inputs[1:])
            graph.remove(pad, safe=True)
            drop_unused_initializers(graph, params)
            drop_unused_constant_nodes(graph, params)
            count += 1
        if count:
            logger.info("folded %d Pad nodes into Conv pads", count)
        return ir.passes.PassResult(model, modified=bool(count))
