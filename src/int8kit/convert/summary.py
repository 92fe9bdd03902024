"""What a conversion did, in the words a user needs: ops per type in INT8/FP32, and why not INT8."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import onnx_ir as ir

from int8kit import ops
from int8kit.convert.place_int8 import PRECISION_KEY, REASON_KEY, is_binary, is_compute, is_data_movement, is_int8
from int8kit.ir.fusion import FusionReport
from int8kit.ir.node_ids import node_id

CONVERSION_OPS = ("QuantizeLinear", "DequantizeLinear", "Requantize")


@dataclass
class FP32Op:
    node_id: int | None
    name: str
    op_type: str
    reason: str


@dataclass
class ConversionSummary:
    int8_ops: Counter = field(default_factory=Counter)
    fp32_ops: Counter = field(default_factory=Counter)
    fp32_reasons: list[FP32Op] = field(default_factory=list)
    conversions: Counter = field(default_factory=Counter)
    isolated: list[str] = field(default_factory=list)
    fusions: list[FusionReport] = field(default_factory=list)

    def fusion_notes(self) -> list[str]:
        """How many fusions each fusion pass made, and every refusal with its reason."""
        done = ", ".join(f"{r.pass_name} x{len(r.fused)}" for r in self.fusions if r.fused) or "none"
        out = [f"fused: {done}"]
        out += [f"not fused ({r.pass_name}) {name}: {reason}" for r in self.fusions for name, reason in r.skipped]
        return out

    @property
    def int8_compute_ops(self) -> int:
        return self.int8_ops["Conv"] + self.int8_ops["Dense"]

    def rows(self) -> list[tuple[str, int, int]]:
        """(op type, INT8 count, FP32 count) for every op type present."""
        return [(op, self.int8_ops[op], self.fp32_ops[op]) for op in sorted(set(self.int8_ops) | set(self.fp32_ops))]

    def notes(self) -> list[str]:
        """Conversions inserted, why each FP32 op is FP32, and isolated-op warnings."""
        conversions = ", ".join(f"{k} x{v}" for k, v in sorted(self.conversions.items())) or "none"
        out = [f"conversions at INT8/FP32 borders: {conversions}", *self.fusion_notes()]
        out += [f"FP32 #{op.node_id} {op.op_type} {op.name}: {op.reason}" for op in self.fp32_reasons]
        out += [
            f"warning: {name} is an isolated INT8 op between FP32 neighbours "
            "(quantize/dequantize may cost more than it gains)"
            for name in self.isolated
        ]
        return out

    def lines(self) -> list[str]:
        table = ["op type            INT8   FP32"] + [f"{op:<17} {i:>5}  {f:>5}" for op, i, f in self.rows()]
        return table + self.notes()


def _is_conversion(node: ir.Node | None) -> bool:
    return node is not None and node.op_type in CONVERSION_OPS


def summarize(model: ir.Model, fusions: Iterable[FusionReport] = ()) -> ConversionSummary:
    s = ConversionSummary(fusions=list(fusions))
    for node in model.graph:
        if node.op_type in CONVERSION_OPS:
            s.conversions[node.op_type] += 1
            continue
        if PRECISION_KEY not in node.metadata_props:
            continue
        binary = is_binary(node) or (node.domain == ops.DOMAIN and node.op_type in ("Binary", "Affine"))
        if not (is_compute(node) or is_data_movement(node) or binary):
            s.fp32_ops[node.op_type] += 1
            continue
        if is_int8(node):
            s.int8_ops[node.op_type] += 1
            if is_compute(node) and _isolated(node):
                s.isolated.append(f"#{node_id(node)} {node.op_type} {node.name}")
        else:
            s.fp32_ops[node.op_type] += 1
            reason = node.metadata_props.get(REASON_KEY, "")
            s.fp32_reasons.append(FP32Op(node_id(node), node.name or "?", node.op_type, reason))
    return s


def _isolated(node: ir.Node) -> bool:
    """Input quantized right before it and output back to float right after: no INT8 neighbour."""
    src = node.inputs[0].producer() if node.inputs[0] is not None else None
    quantized_in = src is not None and src.op_type == "QuantizeLinear"
    y_float = (node.attributes.get("y_type").value if "y_type" in node.attributes else ops.FLOAT) == ops.FLOAT
    users = [u.node for u in node.outputs[0].uses()]
    float_out = y_float or all(u.op_type == "DequantizeLinear" for u in users)
    return quantized_in and float_out
