"""Decide what gets quantized: which activation tensors get a Q->DQ pair, which weights become int8.

The plan is pure graph analysis (no data), shared by calibration (what to observe) and the QDQ writer
(where to insert), so the two can never disagree. Rules, as onnxruntime's QDQ quantizer does them:
- Conv/Gemm/MatMul: activation inputs get QDQ; weight initializers become per-output-channel s8;
- Add/Concat/pool ops: non-constant inputs and outputs get QDQ, so data can stay int8 between convs;
- an output whose only consumer is Relu/Clip(min >= 0) is quantized after that activation instead (u8);
- tensors that must share one scale (MaxPool and data-movement ops in/out, Concat inputs and output)
  form a group, calibrated as the union of their ranges; a group is u8 only if all members are >= 0;
- a group may take a zero point (scheme.activation_qparams) only if every member is written by a Conv (its
  fused activation included) or a move of such a tensor, and read only by ops whose INT8 form executes zero
  points (op_table's `zero_point`): elsewhere a zero point would send a binary op or a Pad back to FP32.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import onnx
import onnx_ir as ir

from int8kit import op_table
from int8kit.ir.graph import const_array, is_global_mean, is_zero_pad
from int8kit.quantize.scheme import clip_is_nonnegative, nonnegative_tensors
from int8kit.scope import Scope, ScopeNode

logger = logging.getLogger(__name__)

COMPUTE_OPS = op_table.op_types(role="compute")
DATA_OPS = op_table.op_types(qdq="inputs_and_output")
SUPPORTED_OPS = COMPUTE_OPS + DATA_OPS
# Ops whose output holds the same values as (a subset of) their input: one scale fits both.
SHARED_SCALE_OPS = frozenset(op_table.op_types(grid="same"))
# Those that only rearrange or select their one data input (no pooling window, no fill value); a Pad that
# fills 0 moves too (is_zero_pad: 0 is exact on every grid), whatever computes its amounts.
MOVING_OPS = SHARED_SCALE_OPS - {"Concat", "MaxPool", "Pad"}
SHAPE_READERS = frozenset(op_table.op_types(role="shape"))  # read a tensor's shape only, never its values


@dataclass(frozen=True)
class WeightSpec:
    """A weight initializer to store as s8, with its output-channel axis."""

    name: str
    axis: int
    per_channel: bool = True


@dataclass(frozen=True)
class QuantPlan:
    """Activation tensors to quantize (in graph order), their scale groups, and the weights."""

    activations: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    unsigned: frozenset[str]
    zero_point_ok: frozenset[str] = frozenset()
    weight_uses: tuple[tuple[str, int, WeightSpec], ...] = ()  # (node name, input index, spec)
    quantized_nodes: tuple[str, ...] = ()
    excluded_nodes: tuple[str, ...] = ()

    def group_of(self, tensor: str) -> tuple[str, ...]:
        for g in self.groups:
            if tensor in g:
                return g
        return (tensor,)


def plan_quantization(model: ir.Model | onnx.ModelProto, scope: Scope | None = None) -> QuantPlan:
    """Analyse `model` (topologically sorted, every node named) and return what to quantize.

    scope: the nodes to quantize (int8kit.scope; default all of SUPPORTED_OPS); each rule must match a node.
    """
    if isinstance(model, onnx.ModelProto):
        model = ir.serde.deserialize_model(model)
    graph = model.graph
    scope = scope or Scope()
    scope.check_supported(SUPPORTED_OPS)
    scope.check((ScopeNode.of(n) for n in graph), where=f"model {graph.name or '(unnamed)'}")
    exclude = set(scope.exclude_nodes)

    outputs = {v.name for v in graph.outputs}
    order_of = {id(n): i for i, n in enumerate(graph)}
    shape_values = _shape_arithmetic(graph)

    def redirect(t: ir.Value) -> ir.Value:
        """Quantize after a lone Relu/Clip(min >= 0) consumer of a computed tensor, as onnxruntime does."""
        uses = list(t.uses())
        if t.producer() is not None and t.name not in outputs and len(uses) == 1:
            act = uses[0].node
            relu_like = act.op_type == "Relu" or (act.op_type == "Clip" and clip_is_nonnegative(act))
            if relu_like and act.name not in exclude and act.inputs[0] is t:
                return act.outputs[0]
        return t

    wanted: set[str] = set()
    shared: list[tuple[str, ...]] = []
    weight_uses: list[tuple[str, int, WeightSpec]] = []
    quantized: list[str] = []
    for node in graph:
        # A ReduceMean over H and W is a global average pool (torch's dynamo exporter writes the SE blocks'
        # and heads' adaptive_avg_pool2d(1) so): quantized as GlobalAveragePool is.
        op_type = "GlobalAveragePool" if node.op_type == "ReduceMean" and is_global_mean(node) else node.op_type
        if node.domain not in ("", "ai.onnx") or op_type not in SUPPORTED_OPS or not scope.contains(ScopeNode.of(node)):
            continue
        acts, weight = _inputs_of(node)
        if node.op_type in COMPUTE_OPS and (not acts or weight is None):
            continue  # no activation, or two activations (attention's Q.K^T): the converter runs it FP32
        if node.op_type == "Add":
            if len(acts) < 2:
                continue  # x + constant (a bias, GELU's 1 + erf): no sum of two tensors, nothing to quantize
            host = _sum_host_input(node, outputs, order_of)
            acts = [t for t in acts if t is not host]
            if len(acts) == 1 and _is_scaled_by_constant(acts[0]) and len(node.inputs) == 2:
                continue  # Mul(x, c) + c': a BatchNorm no conv absorbed, one int8kit.Affine in the converter
        if any(not _is_float(t) for t in [*acts, *node.outputs]) or all(t.name in shape_values for t in acts):
            continue  # shape arithmetic (an int64 Concat of a Shape; timm's float padding sums): no image data
        quantized.append(node.name)
        wanted.update(t.name for t in acts)
        if weight is not None:
            weight_uses.append((node.name, weight[0], weight[1]))
        if op_type in DATA_OPS:
            outs = [redirect(o) for o in node.outputs[:1]]
            wanted.update(o.name for o in outs)
            if op_type in SHARED_SCALE_OPS and outs and outs[0] is node.outputs[0]:
                shared.append((*(t.name for t in acts), outs[0].name))
    # A quantized tensor that moving ops made from another quantized tensor keeps its scale (GAP -> Flatten ->
    # Gemm; ShuffleNet's Concat -> Reshape -> Transpose -> Reshape -> Slice -> Conv): the INT8 values pass
    # through as they are, where a scale of its own would cost a requantization and a second rounding.
    # When that tensor is not quantized itself but only moving ops read it, it is quantized once there.
    for node in graph:
        for out in node.outputs:
            source = _moved_from(out, wanted) if out.name in wanted else None
            if source is not None:
                wanted.add(source.name)
                shared.append((source.name, out.name))

    order = [v.name for v in graph.inputs if v.name in wanted and not v.is_initializer()]
    order += [o.name for n in graph for o in n.outputs if o.name in wanted]
    groups = _union(order, shared)
    nonneg = nonnegative_tensors(graph)
    unsigned = frozenset(t for g in groups for t in g if all(m in nonneg for m in g))
    values = {o.name: o for n in graph for o in n.outputs}
    zp_ok = frozenset(t for g in groups for t in g if all(_zero_point_ok(values.get(m), outputs) for m in g))
    plan = QuantPlan(
        activations=tuple(order),
        groups=tuple(groups),
        unsigned=unsigned,
        zero_point_ok=zp_ok,
        weight_uses=tuple(weight_uses),
        quantized_nodes=tuple(quantized),
        excluded_nodes=tuple(sorted(exclude)),
    )
    logger.info(
        "plan: %d nodes quantized, %d activation tensors (%d u8), %d weights",
        len(quantized),
        len(order),
        len(unsigned),
        len(weight_uses),
    )
    return plan


def _moves(node: ir.Node | None) -> bool:
    if node is None or not node.inputs or node.inputs[0] is None:
        return False
    return node.op_type in MOVING_OPS or is_zero_pad(node)


def _moved_from(value: ir.Value, wanted: set[str]) -> ir.Value | None:
    """The tensor `value` is a rearrangement of through a chain of moving ops: the first quantized one, else
    the chain's float start when only moving ops (and shape readers) read it; None when `value` is not moved."""
    node = value.producer()
    source = None
    while _moves(node):
        source = node.inputs[0]
        if source.name in wanted:
            return source
        node = source.producer()
    if source is None or not _is_float(source) or source.is_initializer():
        return None
    readers = [use.node for use in source.uses()]
    return source if all(_moves(r) or r.op_type in SHAPE_READERS for r in readers) else None


def _zero_point_ok(value: ir.Value | None, outputs: set[str]) -> bool:
    """Whether a zero point on `value` costs no INT8 kernel: a Conv (through its fused activations) or a zero-point
    move writes it, and only ops whose INT8 form executes zero points read it."""
    if value is None or value.name in outputs or not list(value.uses()):
        return False
    if not all(_takes_zero_point(u.node) for u in value.uses()):
        return False
    writer = value.producer()
    while writer is not None and _spec_role(writer) == "activation" and writer.inputs and writer.inputs[0] is not None:
        source = writer.inputs[0]
        if len(list(source.uses())) != 1:
            return False
        writer = source.producer()
    if writer is None:
        return False
    return writer.op_type == "Conv" or (_takes_zero_point(writer) and _spec_role(writer) == "data_movement")


def _spec_role(node: ir.Node) -> str | None:
    row = op_table.spec(node.op_type)
    return None if row is None or node.domain not in ("", "ai.onnx") else row.role


def _takes_zero_point(node: ir.Node) -> bool:
    row = op_table.spec(node.op_type)
    return row is not None and node.domain in ("", "ai.onnx") and row.zero_point


def _shape_arithmetic(graph: ir.Graph) -> set[str]:
    """Values computed from tensor shapes and constants alone. timm's pad_same sums its padding in float
    (Shape -> Gather -> Cast -> Sub -> Clip -> Unsqueeze -> Concat -> Cast -> Pad): those Concats and Adds
    carry no image data, and calibrating them found constant ranges."""
    derived: set[str] = set()
    for node in graph:
        ins = [v for v in node.inputs if v is not None]
        from_shapes = any(v.name in derived for v in ins) and all(
            v.name in derived or const_array(v) is not None for v in ins
        )
        if node.op_type in ("Shape", "Size") or from_shapes:
            derived.update(o.name for o in node.outputs)
    return derived


def _is_float(value: ir.Value) -> bool:
    """Unknown element types count as float (shape inference is a hint here)."""
    return value.dtype is None or value.dtype == ir.DataType.FLOAT


def _is_scaled_by_constant(tensor: ir.Value) -> bool:
    """Whether `tensor` is Mul(x, constant): with a constant Add after it, a lowered BatchNorm."""
    mul = tensor.producer()
    return mul is not None and mul.op_type == "Mul" and any(i is not None and i.is_initializer() for i in mul.inputs)


def _sum_host_input(node: ir.Node, outputs: set[str], order_of: dict[int, int]) -> ir.Value | None:
    """The Add input the converter will fuse as a conv's sum post-op: the later Conv-produced one read
    only by this Add. Quantizing it would only add a rounding that no INT8 kernel needs (as NNCF and
    OpenVINO do, the residual branch's conv output stays unquantized; the other input and the output get
    Q/DQ)."""
    candidates = []
    for t in node.inputs:
        src = None if t is None else t.producer()
        if src is not None and src.op_type == "Conv" and len(list(t.uses())) == 1 and t.name not in outputs:
            candidates.append((order_of.get(id(src), -1), t))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _inputs_of(node: ir.Node) -> tuple[list[ir.Value], tuple | None]:
    """(activation inputs to quantize, (input index, WeightSpec) of the weight or None)."""
    ins = list(node.inputs)
    if node.op_type in COMPUTE_OPS:
        acts = [ins[0]] if ins[0] is not None and not ins[0].is_initializer() else []
        weight = None
        w = ins[1] if len(ins) > 1 else None
        if w is not None:
            if w.is_initializer() and w.const_value is not None and w.const_value.dtype == ir.DataType.FLOAT:
                axis = _weight_axis(node, len(w.const_value.shape))
                if axis is not None:
                    weight = (1, WeightSpec(w.name, axis))
            elif not w.is_initializer():
                acts.append(w)
        return acts, weight
    return [i for i in ins if i is not None and not i.is_initializer()], None


def _weight_axis(node: ir.Node, ndim: int) -> int | None:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = node.attributes.get("transB")
        return 0 if trans_b is not None and trans_b.as_int() else 1
    return ndim - 1 if ndim >= 2 else None  # MatMul: [.., K, N]


def _union(order: list[str], shared: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    parent = {t: t for t in order}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for members in shared:
        members = [m for m in members if m in parent]
        for m in members[1:]:
            parent[find(m)] = find(members[0])
    groups: dict[str, list[str]] = defaultdict(list)
    for t in order:
        groups[find(t)].append(t)
    return [tuple(g) for g in groups.values()]
