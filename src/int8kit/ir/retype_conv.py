"""ONNX Conv (2-D) -> int8kit.Conv with every attribute explicit (a retype: nothing is fused here).

The later passes and the runtime then never deal with ONNX defaults or auto_pad: pads are always
[top, left, bottom, right], resolved here from auto_pad with the (inferred) input shape. The node is
rewritten in place, so its name, metadata (int8kit.id) and output value stay the same.
"""

from __future__ import annotations

import logging
import math

import onnx_ir as ir

from int8kit import ops
from int8kit.ir.fusion import (
    FusionPass,
    const_array,
    is_onnx_op,
    set_attr_ints,
    set_post_ops,
)
from int8kit.metadata import SOURCE_OP_KEY

logger = logging.getLogger(__name__)


def same_pads(size: int, k: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """(begin, end) padding of one spatial axis for auto_pad SAME_UPPER / SAME_LOWER (ONNX spec)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if upper else (big, small)


def _resolve_pads(node: ir.Node, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int] | str:
    """Explicit [t, l, b, r] pads, or a reason string when they cannot be known."""
    auto = node.attributes.get_string("auto_pad", "NOTSET")
    if auto == "NOTSET":
        return list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        return f"unknown auto_pad {auto!r}"
    shape = node.inputs[0].shape
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
        return f"auto_pad={auto} needs the input's spatial shape, which is unknown (run shape inference)"
    (top, bottom), (left, right) = (
        same_pads(shape[2 + i], kernel[i], strides[i], dilations[i], auto == "SAME_UPPER") for i in range(2)
    )
    return [top, left, bottom, right]


def _conv_form(node: ir.Node) -> tuple[list[int], list[int], list[int], int] | str:
    """(strides, pads, dilations, group) of the int8kit.Conv an ONNX Conv becomes, or why it cannot."""
    if len(node.inputs) < 2 or node.inputs[0] is None:
        return "Conv without a weight input"
    weight = const_array(node.inputs[1])
    if weight is None:
        return "weight is not a constant initializer"
    if weight.ndim != 4:
        return f"{weight.ndim - 2}-D convolution (only 2-D is supported)"
    if len(node.inputs) > 2 and node.inputs[2] is not None and const_array(node.inputs[2]) is None:
        return "bias is not a constant initializer"
    kernel = list(node.attributes.get_ints("kernel_shape", list(weight.shape[2:])))
    if kernel != list(weight.shape[2:]):
        return f"kernel_shape {kernel} disagrees with the weight shape {list(weight.shape)}"
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    dilations = list(node.attributes.get_ints("dilations", [1, 1]))
    group = node.attributes["group"].as_int() if "group" in node.attributes else 1
    pads = _resolve_pads(node, kernel, strides, dilations)
    if isinstance(pads, str):
        return pads
    if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2:
        return f"malformed attributes: pads={pads} strides={strides} dilations={dilations}"
    return strides, pads, dilations, group


def conv_refusal(node: ir.Node) -> str | None:
    """Why an ONNX Conv cannot become an int8kit.Conv (None when it can), without changing it."""
    form = _conv_form(node)
    return form if isinstance(form, str) else None


def convert_conv(node: ir.Node) -> str | None:
    """Rewrite one ONNX Conv as int8kit.Conv in place; returns None, or why it was left alone."""
    form = _conv_form(node)
    if isinstance(form, str):
        return form
    strides, pads, dilations, group = form
    node.metadata_props[SOURCE_OP_KEY] = node.op_type
    node.domain = ops.DOMAIN
    node.op_type = "Conv"
    node.version = None
    node.attributes.clear()
    set_attr_ints(node, "strides", strides)
    set_attr_ints(node, "pads", pads)
    set_attr_ints(node, "dilations", dilations)
    node.attributes["group"] = ir.Attr("group", ir.AttributeType.INT, int(group))
    set_post_ops(node, [])
    return None


class ConvToInt8kitPass(FusionPass):
    """Every convertible 2-D ONNX Conv becomes an int8kit.Conv; the rest stay ONNX Convs."""

    report_name = "conv_to_int8kit"

    def fuse_node(self, node: ir.Node) -> bool:
        if not is_onnx_op(node, "Conv"):
            return False
        reason = convert_conv(node)
        if reason is not None:
            self.report.skip(node, reason)
            return False
        self.report.fuse(node, "-> int8kit.Conv")
        return True
