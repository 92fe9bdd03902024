"""The exact GELU spelled out in elementary ops becomes one int8kit.Gelu node; so does its tanh approximation.

torch.onnx (opset < 20) writes nn.GELU() as Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5, and other
exporters write the same function with Mul(x, 1/sqrt 2) or with the halving elsewhere in the product;
gelu(approximate="tanh") becomes nine element-wise ops around a Tanh. Left so, the Erf has no kernel in the
engine (ConvNeXt and ViT would be refused) and the tanh form costs nine passes over the tensor; as one node
it is oneDNN's gelu_erf / gelu_tanh eltwise, and a post-op of the Dense or Conv before it (fuse_activation).
Only intermediates with no other reader fuse, so a QDQ file that quantizes inside the pattern is left exactly
as written.
"""

from __future__ import annotations

import logging
import math

import onnx_ir as ir

from int8kit import ops
from int8kit.ir.encoding import encoding
from int8kit.ir.graph import const_array, const_scalar, other_input, replace_chain, sole_reader

logger = logging.getLogger(__name__)

SQRT2 = math.sqrt(2.0)


def _is_op(node: ir.Node | None, *op_types: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type in op_types


def _halves(node: ir.Node | None, value: ir.Value) -> bool:
    """`node` computes value * 0.5 or value / 2."""
    if _is_op(node, "Mul"):
        c = const_scalar(other_input(node, value))
        return c is not None and math.isclose(c, 0.5, rel_tol=1e-6)
    if _is_op(node, "Div") and node.inputs[0] is value:
        c = const_scalar(node.inputs[1])
        return c is not None and math.isclose(c, 2.0, rel_tol=1e-6)
    return False


def _erf_argument(erf: ir.Node) -> tuple[ir.Value, ir.Node] | None:
    """(x, the scaling node) when the Erf reads x / sqrt(2) (Div) or x * (1 / sqrt(2)) (Mul)."""
    scaled = erf.inputs[0]
    node = scaled.producer() if scaled is not None else None
    if node is None or sole_reader(scaled) is not erf:
        return None
    if _is_op(node, "Div"):
        c = const_scalar(node.inputs[1])
        if c is not None and math.isclose(c, SQRT2, rel_tol=1e-5) and const_array(node.inputs[0]) is None:
            return node.inputs[0], node
    if _is_op(node, "Mul"):
        for i in (0, 1):
            c = const_scalar(node.inputs[1 - i])
            if c is not None and math.isclose(c, 1 / SQRT2, rel_tol=1e-5) and const_array(node.inputs[i]) is None:
                return node.inputs[i], node
    return None


def _cube_of(value: ir.Value) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, nodes) when `value` is x * (x * x), (x * x) * x or Pow(x, 3), each product read only there."""
    node = value.producer()
    if _is_op(node, "Pow"):
        c = const_scalar(node.inputs[1])
        return (node.inputs[0], [node]) if c is not None and c == 3.0 else None
    if not _is_op(node, "Mul") or len(node.inputs) != 2:
        return None
    for i in (0, 1):
        square, x = node.inputs[i], node.inputs[1 - i]
        inner = square.producer() if square is not None else None
        if _is_op(inner, "Mul") and list(inner.inputs) == [x, x] and sole_reader(square) is node:
            return x, [inner, node]
    return None


def _tanh_argument(tanh: ir.Node) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, nodes) when the Tanh reads sqrt(2 / pi) * (x + 0.044715 * x^3), as torch writes gelu(approximate="tanh")."""
    scaled = tanh.inputs[0]
    outer = scaled.producer() if scaled is not None else None
    if not _is_op(outer, "Mul") or sole_reader(scaled) is not tanh:
        return None
    for i in (0, 1):
        c, inner = const_scalar(outer.inputs[1 - i]), outer.inputs[i]
        add = inner.producer() if inner is not None else None
        if c is None or not math.isclose(c, math.sqrt(2 / math.pi), rel_tol=1e-5) or not _is_op(add, "Add"):
            continue
        if sole_reader(inner) is not outer:
            continue
        for j in (0, 1):
            x, term = add.inputs[j], add.inputs[1 - j]
            mul = term.producer() if term is not None else None
            if not _is_op(mul, "Mul") or sole_reader(term) is not add:
                continue
            for k in (0, 1):
                c3, cube = const_scalar(mul.inputs[1 - k]), mul.inputs[k]
                if c3 is None or not math.isclose(c3, 0.044715, rel_tol=1e-4) or cube is None:
                    continue
                found = _cube_of(cube)
                if found is not None and found[0] is x and sole_reader(cube) is mul:
                    return x, [*found[1], mul, add, outer]
    return None


def match_gelu(core: ir.Node) -> tuple[ir.Value, list[ir.Node], str] | None:
    """(x, the nodes computing 0.5 * x * (1 + f(x)), last one last, "erf" or "tanh") when `core` is the Erf of
    the exact GELU or the Tanh of its tanh approximation, or None."""
    if _is_op(core, "Erf"):
        argument, kind = _erf_argument(core), "erf"
        if argument is not None:
            argument = (argument[0], [argument[1]])
    elif _is_op(core, "Tanh"):
        argument, kind = _tanh_argument(core), "tanh"
    else:
        return None
    if argument is None:
        return None
    x, front = argument
    front = [*front, core]
    add = sole_reader(core.outputs[0])
    one = const_scalar(other_input(add, core.outputs[0])) if _is_op(add, "Add") else None
    if one is None or not math.isclose(one, 1.0, rel_tol=1e-6):
        return None
    s = add.outputs[0]  # 1 + f(x)
    first = sole_reader(s)
    if not _is_op(first, "Mul"):
        return None
    other = other_input(first, s)
    if other is x:  # (x * s) * 0.5
        last = sole_reader(first.outputs[0])
        return (x, [*front, add, first, last], kind) if _halves(last, first.outputs[0]) else None
    if _halves(first, s):  # x * (s * 0.5)
        last = sole_reader(first.outputs[0])
        if _is_op(last, "Mul") and other_input(last, first.outputs[0]) is x:
            return x, [*front, add, first, last], kind
        return None
    half = other.producer() if other is not None else None  # (x * 0.5) * s
    if _is_op(half, "Mul") and _halves(half, x) and sole_reader(other) is first:
        return x, [*front, add, half, first], kind
    return None


class FuseGeluPatternPass(ir.passes.InPlacePass):
    """0.5 * x * (1 + erf(x / sqrt 2)) in Div/Mul/Erf/Add ops -> int8kit.Gelu(x); its tanh approximation
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) -> int8kit.Gelu(x, approximate="tanh")."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        count = 0
        for core in list(graph):
            if core.graph is None:
                continue
            match = match_gelu(core)
            if match is None:
                continue
            x, nodes, kind = match
            if any(encoding(node.outputs[0]) is not None for node in nodes[:-1]):
                continue  # the QDQ file rounds inside the pattern: left as written
            attrs = {"approximate": "tanh"} if kind == "tanh" else {}
            name = f"{nodes[-1].name or 'gelu'}/gelu"
            replace_chain(graph, nodes, ir.node("Gelu", [x], attrs, domain=ops.DOMAIN, name=name))
            count += 1
        if count:
            model.opset_imports.setdefault(ops.DOMAIN, ops.DOMAIN_VERSION)
            logger.info("rewrote %d spelled-out GELUs as int8kit.Gelu", count)
        return ir.passes.PassResult(model, modified=bool(count))
