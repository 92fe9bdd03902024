"""Give encodings to tensors between quantized ops so data can stay INT8 across them.

Ops that move values without changing them (max pools, reshapes, transposes, splits, slices) pass an
encoding forward to their output, and backward to an input only they read: the quantized values are
the same numbers, so the encoding holds exactly. A Concat whose output has no encoding of its own gets
its inputs' when they share one. Nothing else is invented: an average the file leaves in float, or a
Concat of inputs on different grids it leaves unquantized, would be rounded where the file does not
round, so those run FP32 (convert.place_int8). Runs to a fixed point.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import op_table
from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import copy_encoding, encoding, set_encoding
from int8kit.ir.graph import is_zero_pad
from int8kit.metadata import ENCODING_KEY

logger = logging.getLogger(__name__)

VALUE_PRESERVING = op_table.op_types(grid="same", many_inputs=False)


def _step(node: ir.Node) -> bool:
    """One node's propagation; True when it changed an encoding."""
    if node.domain not in ("", "ai.onnx") or not node.inputs or node.inputs[0] is None:
        return False
    src = node.inputs[0]
    outs = [v for v in node.outputs if v is not None]
    if node.op_type in VALUE_PRESERVING:
        changed = False
        for out in outs:
            if encoding(out) is None:
                if not _fills_a_value(node):
                    changed |= copy_encoding(src, out)
            elif encoding(src) is None and len(src.uses()) == 1 and len(outs) == 1:
                changed |= copy_encoding(out, src)
        return changed
    if node.op_type == "Concat" and encoding(outs[0]) is None:
        encs = [encoding(v) for v in node.inputs if v is not None]
        if any(e is None or e != encs[0] for e in encs):
            return False  # inputs on different grids (or none): the file concatenates floats, so does FP32
        set_encoding(outs[0], encs[0])
        return True
    return False


def _fills_a_value(node: ir.Node) -> bool:
    """A constant Pad of a value other than 0 adds a number the input's grid may not hold (EfficientViT pads
    its attention's values with 1.0, which saturated at 127 codes of 0.005): its output has no encoding
    unless the file gives it one."""
    return (
        node.op_type == "Pad" and node.attributes.get_string("mode", "constant") == "constant" and not is_zero_pad(node)
    )


class PropagateScalesPass(ContractPass):
    """Fixed-point propagation of encodings through value-preserving ops and Concat."""

    reads = (ENCODING_KEY,)
    writes = (ENCODING_KEY,)

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
