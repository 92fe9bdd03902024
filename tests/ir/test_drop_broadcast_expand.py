"""DropBroadcastExpandPass: Mul(x, Expand(gate, Shape(x))) reads the gate directly, with onnxruntime's values on
the original; an Expand to another tensor's shape, or read by a non-broadcasting op, stays."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.drop_broadcast_expand import DropBroadcastExpandPass

from ._util import assert_same_outputs, make_model, op_types, rng, vinfo


def _gated(shape_of: str = "x", reader: str = "Mul", also_output: bool = False):
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Sigmoid", ["pooled"], ["gate"]),
        helper.make_node("Shape", [shape_of], ["shape"]),
        helper.make_node("Expand", ["gate", "shape"], ["expanded"]),
        helper.make_node(reader, ["x", "expanded"], ["y"]),
    ]
    outputs = [vinfo("y", None)] + ([vinfo("expanded", None)] if also_output else [])
    inputs = [vinfo("x", ["N", 4, 5, 6]), vinfo("other", ["N", 4, 5, 6])]
    return make_model(nodes, inputs, outputs)


def _feeds():
    return {k: rng().standard_normal((2, 4, 5, 6)).astype(np.float32) for k in ("x", "other")}


def test_the_gate_multiplies_directly_and_values_stay():
    proto = _gated()
    model = ir.serde.deserialize_model(proto)
    assert DropBroadcastExpandPass()(model).modified
    assert "Expand" not in op_types(model) and "Shape" not in op_types(model)
    assert_same_outputs(proto, model, _feeds())


def test_an_expand_another_reader_needs_stays_for_it():
    proto = _gated(also_output=True)
    model = ir.serde.deserialize_model(proto)
    assert DropBroadcastExpandPass()(model).modified
    assert "Expand" in op_types(model)
    assert_same_outputs(proto, model, _feeds())


def test_expands_to_another_shape_or_for_other_ops_are_left_alone():
    for proto in (_gated(shape_of="other"), _gated(reader="Concat")):
        if proto.graph.node[-1].op_type == "Concat":
            proto.graph.node[-1].attribute.append(helper.make_attribute("axis", 1))
        assert not DropBroadcastExpandPass()(ir.serde.deserialize_model(proto)).modified
