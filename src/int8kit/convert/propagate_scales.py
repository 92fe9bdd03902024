"""Give ranges to tensors between quantized ops so data can stay INT8 across them.

Ops that do not change values' scale (pools, reshapes, transposes, ReLU) pass a range forward to
their output, and pools/reshapes also backward to their input; a Concat shares one range among its
output and inputs (the widest). Non-negativity is derived too: outputs of ReLU-like post-op chains,
and anything computed only from non-negative tensors by these ops. Runs to a fixed point.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import ops
from int8kit.convert.scales import copy_range, is_unsigned, set_range, threshold

logger = logging.getLogger(__name__)

SCALE_PRESERVING = (
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Identity",
)
NON_NEGATIVE_POST_OPS = ("relu", "sigmoid", "hardsigmoid")


def ends_non_negative(chain: list[str]) -> bool:
    """Whether a post-op chain's last step makes its output non-negative."""
    if not chain:
        return False
    last = ops.PostOp.decode(chain[-1])
    if last.kind in NON_NEGATIVE_POST_OPS:
        return True
    return last.kind == "clip" and bool(last.params) and last.params[0] >= 0.0


def _post_ops(node: ir.Node) -> list[str]:
    attr = node.attributes.get("post_ops")
    return list(attr.as_strings()) if attr is not None else []


def _mark_unsigned(value: ir.Value) -> bool:
    t = threshold(value)
    if t is None or is_unsigned(value):
        return False
    set_range(value, t, True)
    return True


def _step(node: ir.Node) -> bool:
    """One node's propagation; True when it changed a range."""
    changed = False
    if node.domain == ops.DOMAIN and node.op_type in ("Conv", "Dense"):
        return ends_non_negative(_post_ops(node)) and _mark_unsigned(node.outputs[0])
    if node.domain not in ("", "ai.onnx"):
        return False
    src, out = (node.inputs[0] if node.inputs else None), node.outputs[0]
    if node.op_type == "Relu" and src is not None:
        if threshold(out) is None and threshold(src) is not None:
            set_range(out, threshold(src), True)
            changed = True
        return changed
    if node.op_type in SCALE_PRESERVING and src is not None:
        if threshold(out) is None and threshold(src) is not None:
            copy_range(src, out)
            changed = True
        elif threshold(src) is None and threshold(out) is not None and len(src.uses()) == 1:
            copy_range(out, src)
            changed = True
        if is_unsigned(src) and threshold(out) is not None and not is_unsigned(out):
            changed |= _mark_unsigned(out)
        return changed
    if node.op_type == "Concat":
        ins = [v for v in node.inputs if v is not None]
        if not all(threshold(v) is not None for v in ins):
            return False  # an input without a range keeps the Concat in FP32
        shared = max(threshold(v) for v in ins)
        unsigned = all(is_unsigned(v) for v in ins)
        for v in ins + [out]:
            if threshold(v) != shared or is_unsigned(v) != unsigned:
                set_range(v, shared, unsigned)
                changed = True
    return changed


class PropagateScalesPass(ir.passes.InPlacePass):
    """Fixed-point propagation of ranges through scale-preserving ops and Concat."""

    MAX_ROUNDS = 32

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for _ in range(self.MAX_ROUNDS):
            changed = False
            for node in model.graph:
                changed |= _step(node)
            modified |= changed
            if not changed:
                break
        return ir.passes.PassResult(model, modified=modified)
