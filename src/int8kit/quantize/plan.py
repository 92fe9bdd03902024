"""Decide what gets quantized: which activation tensors get a Q->DQ pair, which weights become int8.

The plan is pure graph analysis (no data), shared by calibration (what to observe) and the QDQ writer
(where to insert), so the two can never disagree. Rules, as onnxruntime's QDQ quantizer does them:
- Conv/Gemm/MatMul: activation inputs get QDQ; weight initializers become per-output-channel s8;
- Add/Concat/pool ops: non-constant inputs and outputs get QDQ, so data can stay int8 between convs;
- an output whose only consumer is Relu/Clip(min >= 0) is quantized after that activation instead (u8);
- tensors that must share one scale (MaxPool and data-movement ops in/out, Concat inputs and output)
  form a group, calibrated as the union of their ranges; a group is u8 only if all members are >= 0.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx

from int8kit.errors import ConfigError
from int8kit.quantize.scheme import clip_is_nonnegative, nonnegative_tensors

logger = logging.getLogger(__name__)

COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
DATA_OPS = ("Add", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool")
SUPPORTED_OPS = COMPUTE_OPS + DATA_OPS
# Ops whose output holds the same values as (a subset of) their input: one scale fits both.
SHARED_SCALE_OPS = frozenset(
    {"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Concat"}
)


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
    weight_uses: tuple[tuple[str, int, WeightSpec], ...] = ()  # (node name, input index, spec)
    quantized_nodes: tuple[str, ...] = ()
    excluded_nodes: tuple[str, ...] = ()

    def group_of(self, tensor: str) -> tuple[str, ...]:
        for g in self.groups:
            if tensor in g:
                return g
        return (tensor,)


def plan_quantization(
    model: onnx.ModelProto, op_types: Iterable[str] = SUPPORTED_OPS, exclude_nodes: Iterable[str] = ()
) -> QuantPlan:
    """Analyse `model` (topologically sorted, every node named) and return what to quantize."""
    graph = model.graph
    op_types = tuple(op_types)
    unknown = sorted(set(op_types) - set(SUPPORTED_OPS))
    if unknown:
        raise ConfigError(f"cannot quantize op types {', '.join(unknown)}; supported: {', '.join(SUPPORTED_OPS)}")
    exclude = set(exclude_nodes)
    names = {n.name for n in graph.node}
    missing = sorted(exclude - names)
    if missing:
        raise ConfigError(f"nodes to exclude are not in the model: {', '.join(missing)}")

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for i in node.input:
            if i:
                consumers[i].append(node)
        for o in node.output:
            if o:
                producer[o] = node
    outputs = {o.name for o in graph.output}

    def constant(name: str) -> np.ndarray | None:
        return onnx.numpy_helper.to_array(inits[name]) if name in inits else None

    def redirect(t: str) -> str:
        """Quantize after a lone Relu/Clip(min >= 0) consumer of a computed tensor, as onnxruntime does."""
        users = consumers.get(t, [])
        if t in producer and t not in outputs and len(users) == 1:
            act = users[0]
            relu_like = act.op_type == "Relu" or (act.op_type == "Clip" and clip_is_nonnegative(act, constant))
            if relu_like and act.name not in exclude and act.input[0] == t:
                return act.output[0]
        return t

    non_float = _non_float_tensors(model)
    order_of = {n.name: i for i, n in enumerate(graph.node)}
    wanted: set[str] = set()
    shared: list[tuple[str, ...]] = []
    weight_uses: list[tuple[str, int, WeightSpec]] = []
    quantized: list[str] = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in op_types or node.name in exclude:
            continue
        acts, weight = _inputs_of(node, inits)
        if node.op_type in COMPUTE_OPS and not acts:
            continue
        if node.op_type == "Add":
            acts = [t for t in acts if t != _sum_host_input(node, producer, consumers, outputs, order_of)]
            if len(acts) == 1 and _is_scaled_by_constant(acts[0], producer, inits) and len(node.input) == 2:
                continue  # Mul(x, c) + c': a BatchNorm no conv absorbed, one int8kit.Affine in the converter
        if any(t in non_float for t in [*acts, *node.output]):
            continue  # shape arithmetic (int64 Concat/Add of a Shape): nothing to quantize
        quantized.append(node.name)
        wanted.update(acts)
        if weight is not None:
            weight_uses.append((node.name, weight[0], weight[1]))
        if node.op_type in DATA_OPS:
            outs = [redirect(o) for o in node.output[:1] if o]
            wanted.update(outs)
            if node.op_type in SHARED_SCALE_OPS and outs and outs[0] == node.output[0]:
                shared.append((*acts, outs[0]))
    # Data-movement ops between two quantized tensors keep one scale (e.g. GAP -> Flatten -> Gemm).
    for node in graph.node:
        movement = node.op_type in SHARED_SCALE_OPS - {"Concat", "MaxPool"} and node.input and node.output
        if movement and node.input[0] in wanted and node.output[0] in wanted:
            shared.append((node.input[0], node.output[0]))

    order = [i.name for i in graph.input if i.name in wanted and i.name not in inits]
    order += [o for n in graph.node for o in n.output if o in wanted]
    groups = _union(order, shared)
    nonneg = nonnegative_tensors(graph)
    unsigned = frozenset(t for g in groups for t in g if all(m in nonneg for m in g))
    plan = QuantPlan(
        activations=tuple(order),
        groups=tuple(groups),
        unsigned=unsigned,
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


def _is_scaled_by_constant(tensor: str, producer: dict, inits: dict) -> bool:
    """Whether `tensor` is Mul(x, constant): with a constant Add after it, a lowered BatchNorm."""
    mul = producer.get(tensor)
    return mul is not None and mul.op_type == "Mul" and any(i in inits for i in mul.input)


def _sum_host_input(node, producer, consumers, outputs, order_of) -> str | None:
    """The Add input the converter will fuse as a conv's sum post-op: the later Conv-produced one read
    only by this Add. Quantizing it would only add a rounding that no INT8 kernel needs (as NNCF and
    OpenVINO do, the residual branch's conv output stays unquantized; the other input and the output get
    Q/DQ)."""
    candidates = []
    for t in node.input:
        src = producer.get(t)
        if src is not None and src.op_type == "Conv" and len(consumers.get(t, [])) == 1 and t not in outputs:
            candidates.append((order_of.get(src.name, -1), t))
    return max(candidates)[1] if candidates else None


def _non_float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of the tensors whose element type is known and not float (shape tensors, indices)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is a hint here; without it every tensor counts as float
        inferred = model
    g = inferred.graph
    typed = [*g.value_info, *g.input, *g.output]
    names = {v.name for v in typed if v.type.tensor_type.elem_type not in (0, onnx.TensorProto.FLOAT)}
    return names | {t.name for t in g.initializer if t.data_type != onnx.TensorProto.FLOAT}


def _inputs_of(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> tuple[list[str], tuple | None]:
    """(activation inputs to quantize, (input index, WeightSpec) of the weight or None)."""
    ins = list(node.input)
    if node.op_type in ("Conv", "Gemm", "MatMul"):
        acts = [ins[0]] if ins[0] not in inits else []
        weight = None
        if len(ins) > 1 and ins[1]:
            w = ins[1]
            if w in inits and inits[w].data_type == onnx.TensorProto.FLOAT:
                ndim = len(inits[w].dims)
                axis = _weight_axis(node, ndim)
                if axis is not None:
                    weight = (1, WeightSpec(w, axis))
            elif w not in inits:
                acts.append(w)
        return acts, weight
    return [i for i in ins if i and i not in inits], None


def _weight_axis(node: onnx.NodeProto, ndim: int) -> int | None:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
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
