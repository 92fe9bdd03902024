"""Run an ONNX graph (after int8kit's intake) as a trainable torch module, with fake-quant where the plan says.

QAT starts from the same FP32 ONNX file that `int8kit quantize` and `int8kit convert` read, so it works for
any model made of the ops below, BatchNorm is already folded into the convolutions exactly as the converter
folds it, and the fake-quant sits on the very tensors the PTQ plan gives QDQ pairs. The float initializers
read by Conv/Gemm/MatMul (weights and biases) become trainable parameters; every other constant is a buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from int8kit import op_table
from int8kit.errors import UnsupportedOpError
from int8kit.qat._torch import require_torch
from int8kit.qat.fake_quant import fake_quantize_weight, make_activation_quantizer
from int8kit.quantize.plan import QuantPlan
from int8kit.quantize.scheme import QParams

logger = logging.getLogger(__name__)

TRAINABLE_OPS = op_table.op_types(role="compute")


@dataclass(frozen=True)
class _Node:
    """What forward() reads of an ir.Node, by tensor name (read once, so training steps do no graph walks)."""

    name: str
    op_type: str
    domain: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    attrs: Mapping[str, Any]

    @classmethod
    def of(cls, node: ir.Node) -> _Node:
        ins = tuple("" if v is None else v.name for v in node.inputs)
        attrs = {k: a.value for k, a in node.attributes.items()}
        return cls(node.name, node.op_type, node.domain, ins, tuple(o.name for o in node.outputs), attrs)


def _attrs(node: _Node) -> Mapping[str, Any]:
    return node.attrs


def _sym_pads(node: _Node, pads: list[int]) -> tuple[list[int], list[int] | None]:
    """(torch padding, explicit F.pad list for asymmetric pads or None)."""
    half = len(pads) // 2
    begin, end = pads[:half], pads[half:]
    if begin == end:
        return begin, None
    pad: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        pad += [b, e]
    return [0] * half, pad


def _check_auto_pad(node: _Node, attrs: Mapping[str, Any]) -> None:
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID") or (auto_pad == "VALID" and any(attrs.get("pads", []))):
        raise UnsupportedOpError(f"node {node.name} ({node.op_type}): auto_pad={auto_pad} is not supported by QAT")


def make_graph_module(model: ir.Model, plan: QuantPlan, qparams: Mapping[str, QParams]) -> Any:
    """The torch module of `model` (topologically sorted, nodes named) with fake-quant per `plan`/`qparams`."""
    torch = require_torch()
    F = torch.nn.functional
    inits = {name: v.const_value.numpy() for name, v in model.graph.initializers.items() if v.const_value is not None}
    nodes = [_Node.of(n) for n in model.graph]
    trainable = sorted(
        {
            name
            for n in nodes
            if n.op_type in TRAINABLE_OPS and n.domain in ("", "ai.onnx")
            for name in n.input[1:3]
            if name in inits and inits[name].dtype == np.float32
        }
    )
    weight_axis = {(node, index): spec.axis for node, index, spec in plan.weight_uses if spec.per_channel}
    group_index = {t: k for k, g in enumerate(plan.groups) for t in g}
    quantized = set(plan.activations)
    excluded = set(plan.excluded_nodes)
    graph_inputs = [v.name for v in model.graph.inputs if v.name not in inits]
    graph_outputs = [v.name for v in model.graph.outputs]

    class GraphModule(torch.nn.Module):
        """`forward(*inputs)` returns the graph outputs (a tensor when there is one); `quantize` toggles fake-quant."""

        def __init__(self) -> None:
            super().__init__()
            self.quantize = True
            self.observer: Callable[[str, Any], None] | None = None
            self.params = torch.nn.ParameterList()
            self.param_index: dict[str, int] = {}
            for name in trainable:
                self.param_index[name] = len(self.params)
                self.params.append(torch.nn.Parameter(torch.from_numpy(inits[name].copy())))
            self.constants = {n: torch.from_numpy(np.array(v)) for n, v in inits.items() if n not in trainable}
            self.act_quant = torch.nn.ModuleList(
                make_activation_quantizer(qparams[g[0]]) for g in plan.groups if g[0] in qparams
            )
            if len(self.act_quant) != len(plan.groups):
                missing = [g[0] for g in plan.groups if g[0] not in qparams]
                raise ValueError(f"no initial scale for activation groups of {', '.join(missing)}")

        def weights(self) -> dict[str, np.ndarray]:
            """The current float weights by initializer name (what export writes back)."""
            return {n: self.params[i].detach().cpu().numpy().copy() for n, i in self.param_index.items()}

        def qparams(self) -> dict[str, QParams]:
            """The current activation quantization of every planned tensor."""
            return {t: self.act_quant[group_index[t]].qparams() for t in plan.activations}

        def _value(self, name: str) -> Any:
            if name in self.param_index:
                return self.params[self.param_index[name]]
            return self.constants[name]

        def _quant(self, name: str, value: Any) -> Any:
            if self.observer is not None and name in quantized:
                self.observer(name, value)
            if self.quantize and name in quantized:
                return self.act_quant[group_index[name]](value)
            return value

        def forward(self, *inputs: Any) -> Any:
            if len(inputs) != len(graph_inputs):
                raise ValueError(f"model takes {len(graph_inputs)} inputs, got {len(inputs)}")
            raw: dict[str, Any] = {}  # float values (graph outputs, excluded consumers)
            env: dict[str, Any] = {}  # what quantized consumers read
            for name, x in zip(graph_inputs, inputs, strict=True):
                raw[name], env[name] = x, self._quant(name, x)
            for node in nodes:
                source = raw if node.name in excluded else env
                args = []
                for k, name in enumerate(node.input):
                    if not name:
                        args.append(None)
                    elif name in source:
                        args.append(source[name])
                    else:
                        value = self._value(name)
                        if self.quantize and (node.name, k) in weight_axis and node.name not in excluded:
                            value = fake_quantize_weight(value, weight_axis[(node.name, k)])
                        args.append(value)
                outs = _run(torch, F, node, args)
                for name, value in zip(node.output, outs, strict=False):
                    if name:
                        raw[name], env[name] = value, self._quant(name, value)
            results = [raw[n] for n in graph_outputs]
            return results[0] if len(results) == 1 else tuple(results)

    module = GraphModule()
    logger.info(
        "QAT graph: %d nodes, %d trainable tensors, %d activation scale groups",
        len(nodes),
        len(trainable),
        len(plan.groups),
    )
    return module


def _run(torch: Any, F: Any, node: _Node, args: list[Any]) -> list[Any]:
    """One ONNX node in torch (the op set int8kit's intake leaves in image classifiers)."""
    op, a = node.op_type, _attrs(node)
    if node.domain not in ("", "ai.onnx"):
        raise UnsupportedOpError(f"node {node.name}: op {node.domain}.{op} is not supported by QAT")
    x = args[0] if args else None
    if op == "Conv":
        _check_auto_pad(node, a)
        ndim = x.dim() - 2
        pad, explicit = _sym_pads(node, list(a.get("pads", [0] * 2 * ndim)))
        if explicit is not None:
            x = F.pad(x, explicit)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
        bias = args[2] if len(args) > 2 else None
        return [
            conv(
                x,
                args[1],
                bias,
                stride=a.get("strides", [1] * ndim),
                padding=pad,
                dilation=a.get("dilations", [1] * ndim),
                groups=a.get("group", 1),
            )
        ]
    if op == "Gemm":
        b = args[1]
        x = x.t() if a.get("transA", 0) else x
        b = b.t() if a.get("transB", 0) else b
        y = a.get("alpha", 1.0) * (x @ b)
        if len(args) > 2 and args[2] is not None:
            y = y + a.get("beta", 1.0) * args[2]
        return [y]
    if op == "MatMul":
        return [torch.matmul(x, args[1])]
    if op == "Relu":
        return [F.relu(x)]
    if op == "Clip":
        lo = a.get("min", args[1] if len(args) > 1 else None)
        hi = a.get("max", args[2] if len(args) > 2 else None)
        return [torch.clamp(x, None if lo is None else float(lo), None if hi is None else float(hi))]
    if op == "Sigmoid":
        return [torch.sigmoid(x)]
    if op == "HardSigmoid":
        return [torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0)]
    if op == "HardSwish":
        return [F.hardswish(x)]
    if op in ("Add", "Sub", "Mul", "Div"):
        fn = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op]
        return [fn(x, args[1])]
    if op == "GlobalAveragePool":
        return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op == "GlobalMaxPool":
        return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op in ("MaxPool", "AveragePool"):
        _check_auto_pad(node, a)
        k = a["kernel_shape"]
        pad, explicit = _sym_pads(node, list(a.get("pads", [0] * 2 * len(k))))
        if explicit is not None or any(2 * p > kk for p, kk in zip(pad, k, strict=True)):
            raise UnsupportedOpError(f"node {node.name} ({op}): asymmetric or oversized pads are not supported by QAT")
        strides, ceil = a.get("strides", [1] * len(k)), bool(a.get("ceil_mode", 0))
        if op == "MaxPool":
            if len(node.output) > 1 and node.output[1]:
                raise UnsupportedOpError(f"node {node.name}: MaxPool indices output is not supported by QAT")
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[len(k)]
            return [fn(x, k, strides, pad, a.get("dilations", [1] * len(k)), ceil)]
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[len(k)]
        return [fn(x, k, strides, pad, ceil, bool(a.get("count_include_pad", 0)))]
    if op == "Flatten":
        axis = a.get("axis", 1) % max(x.dim(), 1)
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if op == "Reshape":
        shape = [int(s) for s in args[1].tolist()]
        shape = [x.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Transpose":
        return [x.permute(*a.get("perm", list(reversed(range(x.dim())))))]
    if op == "Concat":
        return [torch.cat([t for t in args if t is not None], dim=a["axis"])]
    if op == "Identity":
        return [x]
    if op == "Softmax":
        return [torch.softmax(x, dim=a.get("axis", -1))]
    if op == "LogSoftmax":
        return [torch.log_softmax(x, dim=a.get("axis", -1))]
    if op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes", args[1].tolist() if len(args) > 1 and args[1] is not None else None)
        if op == "Squeeze":
            dims = [d % x.dim() for d in axes] if axes is not None else [d for d in range(x.dim()) if x.shape[d] == 1]
            for d in sorted(dims, reverse=True):
                x = x.squeeze(d)
            return [x]
        rank = x.dim() + len(axes)
        for d in sorted(ax % rank for ax in axes):
            x = x.unsqueeze(d)
        return [x]
    raise UnsupportedOpError(f"node {node.name}: op {op} is not supported by QAT")
