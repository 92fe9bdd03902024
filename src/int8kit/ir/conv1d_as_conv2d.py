"""A Conv over one spatial axis becomes a 2-D Conv over [N, C, 1, L], between an Unsqueeze and a Squeeze.

ECA-Net's channel attention (timm's eca_* models) runs a Conv1d over the pooled channel vector; the
engine and the converter know 2-D convolutions only. A 1-D kernel k over L is exactly a 1 x k kernel
over 1 x L, so the rewrite is exact: the weight gains a unit axis, strides/dilations/pads a neutral
leading entry. It runs after BatchNormalization folding (a Conv1d -> BatchNorm1d pair folds first) and
before the fusions; the INT8 encodings the QDQ file gave the input and output carry over to their 4-D
views, so the converter keeps the convolution INT8.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.fusion import is_onnx_op, new_initializer
from int8kit.ir.graph import const_array, drop_unused_initializers, take_over
from int8kit.ir.weight_grid import WeightGrid, grid_of, set_grid

logger = logging.getLogger(__name__)


def _attrs_2d(node: ir.Node) -> dict[str, ir.Attr] | None:
    """The node's attributes over (1, L), or None when they are not those of a 1-D Conv."""
    attrs: dict[str, ir.Attr] = {}
    for name, attr in node.attributes.items():
        if name in ("kernel_shape", "strides", "dilations"):
            values = list(attr.as_ints())
            if len(values) != 1:
                return None
            attrs[name] = ir.AttrInt64s(name, [1, *values])
        elif name == "pads":
            values = list(attr.as_ints())
            if len(values) != 2:
                return None
            attrs[name] = ir.AttrInt64s(name, [0, values[0], 0, values[1]])
        else:  # group, auto_pad (SAME_* over a unit axis pads it by 0)
            attrs[name] = attr
    return attrs


def _with_unit_axis(value: ir.Value, name: str) -> ir.Value:
    """A new value for `value` viewed with a unit axis 2: its type, shape and facts (the encoding)."""
    shape = None
    if value.shape is not None and len(value.shape) == 3:
        dims = list(value.shape)
        shape = ir.Shape([*dims[:2], 1, dims[2]])
    view = ir.Value(name=name, type=value.type, shape=shape)
    view.metadata_props.update(value.metadata_props)
    return view


def rewrite(graph: ir.Graph, node: ir.Node) -> bool:
    """Rewrite one ONNX Conv with a constant 3-D weight; False (left alone) otherwise."""
    weight = const_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if node.inputs[0] is None or weight is None or weight.ndim != 3:
        return False
    attrs = _attrs_2d(node)
    if attrs is None:
        return False
    x, y, w = node.inputs[0], node.outputs[0], node.inputs[1]
    w2d = new_initializer(graph, f"{w.name}_2d", weight[:, :, None, :])
    w2d.metadata_props.update(w.metadata_props)
    grid = grid_of(w)  # the QDQ file's int8 grid of the weight, along the same axis of the 4-D weight
    if grid is not None:
        set_grid(w2d, WeightGrid(grid.scales, (0, 1, 3)[grid.axis % 3]))
    axes = new_initializer(graph, f"{node.name}_unit_axis", np.array([2], np.int64))
    x4 = _with_unit_axis(x, f"{x.name}_2d_view_for_{node.name}")
    y4 = _with_unit_axis(y, f"{y.name}_2d")
    unsqueeze = ir.Node("", "Unsqueeze", [x, axes], outputs=[x4], name=f"{node.name}_unsqueeze")
    conv = ir.Node("", "Conv", [x4, w2d, *node.inputs[2:]], attributes=list(attrs.values()), outputs=[y4],
                   name=node.name)  # fmt: skip
    conv.metadata_props.update(node.metadata_props)
    squeeze = ir.Node("", "Squeeze", [y4, axes], name=f"{node.name}_squeeze")
    graph.insert_before(node, [unsqueeze, conv, squeeze])
    squeeze.outputs[0].type, squeeze.outputs[0].shape = y.type, y.shape
    squeeze.outputs[0].metadata_props.update(y.metadata_props)
    take_over(y, squeeze.outputs[0], rename=True)
    graph.remove(node, safe=True)
    drop_unused_initializers(graph, [w])
    return True


class Conv1dAsConv2dPass(ir.passes.InPlacePass):
    """Every ONNX Conv with a constant 3-D weight becomes Unsqueeze -> 2-D Conv -> Squeeze."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        count = sum(rewrite(model.graph, node) for node in list(model.graph) if is_onnx_op(node, "Conv"))
        if count:
            logger.info("conv1d_as_conv2d: %d 1-D Conv(s) as 2-D", count)
        return ir.passes.PassResult(model, modified=count > 0)
