"""Which nodes int8kit may quantize: one vocabulary for `quantize` and `convert`.

A Scope names ONNX op types to quantize (empty: every type the tool supports), then takes out op types,
node names and node ids (the numbers `int8kit convert --debug` draws). An op type rule may carry a
predicate, `Conv[depthwise]` or `Conv[!depthwise]`, and may list alternatives, `Gemm|MatMul`; plain
`Conv` covers depthwise convolutions too. Every rule must match some node of the model it is applied
to (`Scope.check`), so a typo or a stale id is an error naming the rule, never a silent no-op.

Nodes are seen as ScopeNode: the ONNX op type a node had in the file (int8kit's fused Conv is a Conv,
Dense came from a Gemm or a MatMul, Affine from a BatchNormalization), its name, its id and whether it is
a depthwise convolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx_ir as ir

from int8kit import metadata, ops
from int8kit.errors import ConfigError

PREDICATES = ("depthwise",)


@dataclass(frozen=True)
class ScopeNode:
    """What a scope rule can look at in one node."""

    op_type: str  # the ONNX op type (of the file's node, before int8kit fused it)
    name: str = ""
    id: int | None = None
    depthwise: bool = False

    @staticmethod
    def of(node: ir.Node) -> ScopeNode:
        """The view of an onnx_ir node, plain ONNX or fused int8kit (Conv, Dense, Affine)."""
        from int8kit.ir.node_ids import node_id

        op_type = node.metadata_props.get(metadata.SOURCE_OP_KEY) or node.op_type
        if node.domain == ops.DOMAIN and op_type == "Affine":
            op_type = "BatchNormalization"
        return ScopeNode(op_type, node.name or "", node_id(node), op_type == "Conv" and _is_depthwise(node))


def _is_depthwise(node: ir.Node) -> bool:
    """group > 1 with one input channel per group (the weight is [C_out, 1, kh, kw])."""
    group = node.attributes.get("group")
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    shape = weight.shape if weight is not None else None
    if shape is None and weight is not None and weight.const_value is not None:
        shape = weight.const_value.shape
    return group is not None and group.as_int() > 1 and shape is not None and len(shape) > 1 and shape[1] == 1


@dataclass(frozen=True)
class OpTypeRule:
    """One op type rule: alternatives of (op type, predicate or None, negated)."""

    text: str
    options: tuple[tuple[str, str | None, bool], ...]

    @staticmethod
    def parse(text: str) -> OpTypeRule:
        options = []
        for part in text.split("|"):
            part = part.strip()
            op_type, predicate, negated = part, None, False
            if part.endswith("]") and "[" in part:
                op_type, _, rest = part[:-1].partition("[")
                negated = rest.startswith("!")
                predicate = rest.lstrip("!")
                if predicate not in PREDICATES:
                    raise ConfigError(f"scope: unknown predicate [{rest}] in {text!r}; known: {', '.join(PREDICATES)}")
                if op_type != "Conv":
                    raise ConfigError(f"scope: [{predicate}] applies to Conv only, not {op_type!r} (in {text!r})")
            if not op_type.isidentifier():
                raise ConfigError(f"scope: {text!r} is not an ONNX op type (e.g. Conv, Conv[depthwise], Gemm|MatMul)")
            options.append((op_type, predicate, negated))
        return OpTypeRule(text, tuple(options))

    @property
    def op_types(self) -> tuple[str, ...]:
        return tuple(op for op, _, _ in self.options)

    def matches(self, node: ScopeNode) -> bool:
        return any(
            node.op_type == op and (pred is None or node.depthwise != negated) for op, pred, negated in self.options
        )


@dataclass(frozen=True)
class Scope:
    """op_types: ONNX op type rules to quantize (empty: all); the exclude_* fields take nodes back out."""

    op_types: tuple[str, ...] = ()
    exclude_op_types: tuple[str, ...] = ()
    exclude_nodes: tuple[str, ...] = ()
    exclude_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("op_types", "exclude_op_types", "exclude_nodes", "exclude_ids"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # accept lists, stay hashable
        for rule in (*self.op_types, *self.exclude_op_types):
            OpTypeRule.parse(rule)
        bad = [i for i in self.exclude_ids if isinstance(i, bool) or not isinstance(i, int) or i < 0]
        if bad:
            raise ConfigError(f"scope: op ids are non-negative integers, got {bad}")

    @property
    def includes_all(self) -> bool:
        return not (self.op_types or self.exclude_op_types or self.exclude_nodes or self.exclude_ids)

    def op_type_names(self) -> set[str]:
        """Every ONNX op type the rules name (for checking them against what a tool supports)."""
        rules = [OpTypeRule.parse(r) for r in (*self.op_types, *self.exclude_op_types)]
        return {op for rule in rules for op in rule.op_types}

    def check_supported(self, supported: Iterable[str], what: str = "quantize") -> None:
        """Refuse op types the tool cannot quantize, naming them and the ones it can."""
        supported = tuple(supported)
        unknown = sorted(self.op_type_names() - set(supported))
        if unknown:
            raise ConfigError(f"scope: cannot {what} op types {', '.join(unknown)}; supported: {', '.join(supported)}")

    def reason_out(self, node: ScopeNode) -> str | None:
        """None when the node is in scope, else why it is not (the text summaries print)."""
        if node.id is not None and node.id in self.exclude_ids:
            return f"skipped by scope: id {node.id}"
        if node.name and node.name in self.exclude_nodes:
            return f"skipped by scope: node {node.name}"
        for text in self.exclude_op_types:
            if OpTypeRule.parse(text).matches(node):
                return f"skipped by scope: op type {text}"
        if self.op_types and not any(OpTypeRule.parse(t).matches(node) for t in self.op_types):
            return f"{node.op_type} not in the scope's op types ({', '.join(self.op_types)})"
        return None

    def contains(self, node: ScopeNode) -> bool:
        return self.reason_out(node) is None

    def check(self, nodes: Iterable[ScopeNode], where: str = "the model") -> None:
        """Raise ConfigError naming every rule that matches no node of `nodes`."""
        nodes = list(nodes)
        dead = [f"op type {t!r}" for t in self.op_types if not any(OpTypeRule.parse(t).matches(n) for n in nodes)]
        dead += [
            f"excluded op type {t!r}"
            for t in self.exclude_op_types
            if not any(OpTypeRule.parse(t).matches(n) for n in nodes)
        ]
        names = {n.name for n in nodes}
        dead += [f"node {name!r}" for name in self.exclude_nodes if name not in names]
        ids = {n.id for n in nodes}
        dead += [f"op id {i}" for i in self.exclude_ids if i not in ids]
        if dead:
            raise ConfigError(f"scope: {'; '.join(dead)} matches no node in {where} (ids as --debug draws them)")
