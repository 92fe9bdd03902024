"""Shared pieces of the FP32 fusion passes: the FusionReport, and the checks/rewrites they all need.

Every fusion refuses with a reason string instead of silently skipping, so "why did this conv not
fuse with its relu" is answered by the report (and by the debug log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.ir.contract import ContractPass
from int8kit.ir.graph import add_initializer, const_array, take_over, taken_names  # noqa: F401  (const_array re-exported)
from int8kit.metadata import ABSORBED_KEY, PROBE_SHAPES_KEY

logger = logging.getLogger(__name__)

FUSED_OPS = ops.FUSED_COMPUTE_OPS


@dataclass
class FusionReport:
    """What one pass fused and, for each candidate it refused, why."""

    pass_name: str
    fused: list[tuple[str, str]] = field(default_factory=list)  # (node name, what was done)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (node name, reason)

    def fuse(self, node: ir.Node, what: str) -> None:
        self.fused.append((node.name or "?", what))
        logger.debug("%s: %s: %s", self.pass_name, node.name, what)

    def skip(self, node: ir.Node, reason: str) -> None:
        self.skipped.append((node.name or "?", reason))
        logger.debug("%s: %s not fused: %s", self.pass_name, node.name, reason)

    def reasons(self, name: str) -> list[str]:
        """Why the candidate node called `name` was refused (empty when it was not)."""
        return [reason for node, reason in self.skipped if node == name]

    def fused_names(self) -> list[str]:
        return [name for name, _ in self.fused]

    def __str__(self) -> str:
        lines = [f"{self.pass_name}: {len(self.fused)} fused, {len(self.skipped)} refused"]
        lines += [f"  fused   {n}: {w}" for n, w in self.fused]
        lines += [f"  refused {n}: {r}" for n, r in self.skipped]
        return "\n".join(lines)


def is_fused_op(node: ir.Node | None, types: tuple[str, ...] = FUSED_OPS) -> bool:
    return node is not None and node.domain == ops.DOMAIN and node.op_type in types


def is_onnx_op(node: ir.Node | None, op_type: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type == op_type


def sole_consumer(value: ir.Value) -> tuple[ir.Node | None, str]:
    """The one node that reads `value`, or (None, why not): graph outputs and fan-out block fusion."""
    if value.is_graph_output():
        return None, f"{value.name!r} is a graph output"
    uses = list(value.uses())
    if not uses:
        return None, f"{value.name!r} has no consumers"
    if len(uses) > 1:
        users = sorted({u.node.name or "?" for u in uses})
        return None, f"{value.name!r} has {len(uses)} uses ({', '.join(users)})"
    return uses[0].node, ""


def post_ops(node: ir.Node) -> list[str]:
    attr = node.attributes.get("post_ops")
    return list(attr.as_strings()) if attr is not None else []


def post_ops_rounded(node: ir.Node) -> list[str]:
    """The post-op chain, plus the rounding the QDQ model does at the node's output when a fusion is
    about to absorb what follows it (see the "fq" post-op in int8kit.ops)."""
    from int8kit.ir.encoding import fake_quant_post_op

    fq = fake_quant_post_op(node.outputs[0])
    return [*post_ops(node), *([fq] if fq else [])]


def set_post_ops(node: ir.Node, chain: list[str]) -> None:
    node.attributes["post_ops"] = ir.Attr("post_ops", ir.AttributeType.STRINGS, list(chain))


def set_attr_ints(node: ir.Node, name: str, values: list[int]) -> None:
    node.attributes[name] = ir.Attr(name, ir.AttributeType.INTS, [int(v) for v in values])


def record_absorbed(node: ir.Node, absorbed: ir.Node) -> None:
    names = [n for n in node.metadata_props.get(ABSORBED_KEY, "").split(",") if n]
    names += [absorbed.name or absorbed.op_type]
    inner = absorbed.metadata_props.get(ABSORBED_KEY)
    if inner:
        names += inner.split(",")
    node.metadata_props[ABSORBED_KEY] = ",".join(names)


def absorb(node: ir.Node, follower: ir.Node) -> None:
    """Remove `follower` (which reads only node's output) and let node's output take over its output.

    The surviving value keeps the follower's name, so graph outputs and any name-keyed data (scales,
    debug outputs) still refer to the same tensor.
    """
    graph = node.graph
    assert graph is not None
    take_over(follower.outputs[0], node.outputs[0], rename=True, carry_facts=True)
    graph.remove(follower, safe=True)
    record_absorbed(node, follower)


def new_initializer(graph: ir.Graph, base: str, array: np.ndarray) -> ir.Value:
    """A new initializer named after `base`, never clashing with an existing value name."""
    return add_initializer(graph, base, array, taken_names(graph))


def drop_if_unused(graph: ir.Graph, *values: ir.Value | None) -> None:
    """Remove initializers among `values` that nothing reads any more."""
    for value in values:
        if (
            value is not None
            and value.is_initializer()
            and not value.uses()
            and not value.is_graph_output()
            and not value.is_graph_input()
            and value.name in graph.initializers
        ):
            graph.initializers.pop(value.name)


def set_input(node: ir.Node, index: int, value: ir.Value | None) -> None:
    if len(node.inputs) <= index:
        node.resize_inputs(index + 1)
    node.replace_input_with(index, value)


def ensure_domain(model: ir.Model) -> None:
    """Declare the int8kit domain so the file stays a valid ONNX model."""
    model.opset_imports.setdefault(ops.DOMAIN, ops.DOMAIN_VERSION)


def same_shape(a: ir.Shape | None, b: ir.Shape | None) -> bool:
    """Both shapes fully known (ints or named symbols) and equal dim by dim."""
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, int) or isinstance(y, int):
            if x != y:
                return False
        elif x.value is None or y.value is None or x.value != y.value:
            return False
    return True


def same_value_shapes(a: ir.Value, b: ir.Value) -> bool:
    """Whether two values have the same shape: equal dims, or (dynamic input sizes) equal concrete shapes
    under both of intake's probe sizes (ir.infer_shapes.record_probe_shapes)."""
    if same_shape(a.shape, b.shape):
        return True
    pa, pb = a.meta.get(PROBE_SHAPES_KEY), b.meta.get(PROBE_SHAPES_KEY)
    return pa is not None and pa == pb


def fmt_shape(shape: ir.Shape | None) -> str:
    return "unknown" if shape is None else str(list(shape))


class FusionPass(ContractPass):
    """Tries `fuse_node` on every node in order; `report` records what fused and what was refused, and why.

    Run repeatedly (a fixed point), the report keeps what fused in every round and the refusals of the
    latest round only: the reasons that still hold for the graph as it ends up.
    """

    report_name = ""
    writes = (ABSORBED_KEY,)

    def __init__(self) -> None:
        super().__init__()
        self.report = FusionReport(self.report_name)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.report.skipped = []
        self.prepare(model)
        changed = False
        for node in list(model.graph):
            if node.graph is not None and self.fuse_node(node):
                changed = True
        if changed:
            ensure_domain(model)
        return ir.passes.PassResult(model, modified=changed)

    def prepare(self, model: ir.Model) -> None:
        """Per-model state a pass needs before it walks the nodes (none by default)."""

    def fuse_node(self, node: ir.Node) -> bool:
        """Fuse around `node` if it is a candidate; True when the graph changed."""
        raise NotImplementedError

    def absorb_followers(self, node: ir.Node, step) -> bool:
        """Apply `step(node, report)` to a fused Conv/Dense until it absorbs nothing more."""
        changed = False
        while is_fused_op(node) and node.graph is not None and step(node, self.report):
            changed = True
        return changed


def append_linear(node: ir.Node, follower: ir.Node, constant: ir.Value, alpha: float, beta: float) -> str:
    """Absorb `follower` (a scalar Mul or Add of `constant`) as a `linear` post-op alpha * x + beta, after the
    rounding the QDQ file does at `node`'s output; returns the post-op as written."""
    from int8kit.ops import PostOp

    linear = PostOp("linear", (alpha, beta)).encode()
    set_post_ops(node, [*post_ops_rounded(node), linear])
    absorb(node, follower)
    drop_if_unused(node.graph, constant)
    return linear
