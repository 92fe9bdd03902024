"""HardSwish and HardSigmoid spelled out in elementary ops become the single ONNX ops.

- x * HardSigmoid(x) with alpha 1/6 and beta 0.5 (onnxruntime's quant_pre_process, some exporters);
- Clip(x + 3, 0, 6) / 6 (or * 1/6) is HardSigmoid(x; 1/6, 0.5): paddle2onnx and Keras/TF exports write
  MobileNetV3's hard-sigmoid gates and hard-swish activations so, and x * Clip(x + 3, 0, 6) / 6 is
  HardSwish(x).
As several ops reading the conv output, the spelled-out form blocks the conv + activation fusion and leaves
the conv an isolated INT8 op between float element-wise ops. Only intermediates with no other reader fuse,
so a QDQ file that quantizes inside the pattern is left exactly as written.

HardSwish is an opset-14 op and the intake leaves opset-13 models at 13, so a model that gains one has its
default-domain import raised to 14: opset 14 changed no op's meaning under the attributes opset 13 could
write (it added attributes whose defaults keep the old behaviour, and types), and without the raise the
QDQ file `int8kit quantize` writes is one onnxruntime and OpenVINO refuse ("HardSwish" unknown at 13).
"""

from __future__ import annotations

import logging
import math

import onnx_ir as ir

from int8kit.ir.graph import const_array, const_scalar, other_input, replace_chain, sole_reader

logger = logging.getLogger(__name__)

HARDSWISH_OPSET = 14  # the opset that introduced HardSwish


def _float(node: ir.Node, name: str, default: float) -> float:
    attr = node.attributes.get(name)
    return attr.as_float() if attr is not None else default


def _hardswish_gate(mul: ir.Node) -> tuple[ir.Value, ir.Node] | None:
    """(x, the HardSigmoid node) when `mul` computes x * HardSigmoid(x) with HardSwish's constants."""
    for i in (0, 1):
        gate, other = mul.inputs[i], mul.inputs[1 - i]
        node = gate.producer() if gate is not None else None
        if node is None or node.op_type != "HardSigmoid" or node.domain != "" or node.inputs[0] is not other:
            continue
        if not (
            math.isclose(_float(node, "alpha", 0.2), 1 / 6, rel_tol=1e-4)
            and math.isclose(_float(node, "beta", 0.5), 0.5, rel_tol=1e-6)
        ):
            continue
        if len(gate.uses()) != 1 or gate.is_graph_output():
            continue
        return other, node
    return None


def _clip_bounds(clip: ir.Node) -> tuple[float | None, float | None]:
    if "min" in clip.attributes or "max" in clip.attributes:  # opset < 11
        return clip.attributes.get_float("min", None), clip.attributes.get_float("max", None)
    lo = const_scalar(clip.inputs[1]) if len(clip.inputs) > 1 else None
    hi = const_scalar(clip.inputs[2]) if len(clip.inputs) > 2 else None
    return lo, hi


def _divides_by_six(node: ir.Node | None, value: ir.Value) -> bool:
    """`node` computes value / 6 or value * (1/6)."""
    if node is None or node.domain != "" or node.op_type not in ("Div", "Mul"):
        return False
    if node.op_type == "Div" and (node.inputs[0] is not value or len(node.inputs) != 2):
        return False
    c = const_scalar(other_input(node, value))
    if c is None:
        return False
    return math.isclose(c, 6.0, rel_tol=1e-6) if node.op_type == "Div" else math.isclose(c, 1 / 6, rel_tol=1e-4)


def _relu6_of_x_plus_3(clip: ir.Node) -> tuple[ir.Value, ir.Node] | None:
    """(x, the Add node) when `clip` computes Clip(x + 3, 0, 6) and the sum has no other reader."""
    if clip.op_type != "Clip" or clip.domain != "":
        return None
    lo, hi = _clip_bounds(clip)
    if lo is None or hi is None or lo != 0.0 or not math.isclose(hi, 6.0, rel_tol=1e-6):
        return None
    add = clip.inputs[0].producer() if clip.inputs[0] is not None else None
    if add is None or add.op_type != "Add" or add.domain != "" or sole_reader(add.outputs[0]) is not clip:
        return None
    for i in (0, 1):
        c = const_scalar(add.inputs[1 - i])
        if c is not None and math.isclose(c, 3.0, rel_tol=1e-6) and const_array(add.inputs[i]) is None:
            return add.inputs[i], add
    return None


def _replace(graph: ir.Graph, old: list[ir.Node], op_type: str, x: ir.Value, attrs: dict) -> None:
    """Replace the chain `old` (its last node's output kept by name) with one `op_type` node reading x."""
    replace_chain(graph, old, ir.node(op_type, [x], attrs, name=f"{old[-1].name or op_type}/{op_type.lower()}"))


def _spelled_out(graph: ir.Graph) -> tuple[int, int]:
    """Clip(x + 3, 0, 6) / 6 -> HardSigmoid(x; 1/6, 0.5); x * Clip(x + 3, 0, 6) / 6 -> HardSwish(x).
    Returns (patterns rewritten, of which HardSwish)."""
    count = hardswish = 0
    for clip in list(graph):
        if clip.graph is None:
            continue
        match = _relu6_of_x_plus_3(clip)
        if match is None:
            continue
        x, add = match
        reader = sole_reader(clip.outputs[0])
        if _divides_by_six(reader, clip.outputs[0]):  # the gate: Clip(x + 3, 0, 6) / 6
            _replace(graph, [add, clip, reader], "HardSigmoid", x, {"alpha": 1 / 6, "beta": 0.5})
            count += 1
        elif reader is not None and reader.op_type == "Mul" and reader.domain == "":
            if other_input(reader, clip.outputs[0]) is not x:
                continue
            after = sole_reader(reader.outputs[0])
            if _divides_by_six(after, reader.outputs[0]):  # x * Clip(x + 3, 0, 6) / 6
                _replace(graph, [add, clip, reader, after], "HardSwish", x, {})
                count += 1
                hardswish += 1
    return count, hardswish


def _admit_hardswish(model: ir.Model) -> None:
    """Raise an opset-13 model's default-domain import to the opset HardSwish needs (see the module doc)."""
    key = "" if "" in model.opset_imports else "ai.onnx"
    version = model.opset_imports.get(key)
    if version is not None and version < HARDSWISH_OPSET:
        model.opset_imports[key] = HARDSWISH_OPSET
        logger.info("opset %d -> %d: the model now holds HardSwish", version, HARDSWISH_OPSET)


class FuseHardSwishPatternPass(ir.passes.InPlacePass):
    """Spelled-out hard-sigmoid / hard-swish -> HardSigmoid / HardSwish; Mul(x, HardSigmoid(x; 1/6, 0.5))
    -> HardSwish(x)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        count, hardswish = _spelled_out(graph)
        for mul in list(graph):
            if mul.op_type != "Mul" or mul.domain != "" or mul.graph is None:
                continue
            match = _hardswish_gate(mul)
            if match is None:
                continue
            x, hsig = match
            replace_chain(graph, [hsig, mul], ir.node("HardSwish", [x], name=f"{mul.name or hsig.name}/hardswish"))
            count += 1
            hardswish += 1
        if hardswish:
            _admit_hardswish(model)
        if count:
            logger.info("rewrote %d x*HardSigmoid(x) patterns as HardSwish", count)
        return ir.passes.PassResult(model, modified=bool(count))
