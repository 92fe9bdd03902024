"""x * HardSigmoid(x; 1/6, 0.5) becomes HardSwish(x), numerically equal (onnxruntime before and after)."""

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.ir.fuse_hardswish_pattern import FuseHardSwishPatternPass
from tests.ir._util import init, make_model, rng, run_ort, vinfo


def _model(alpha: float, gate_uses: int = 1):
    w = rng().standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("HardSigmoid", ["c"], ["g"], alpha=alpha, beta=0.5, name="gate"),
        helper.make_node("Mul", ["c", "g"], ["y"], name="mul"),
    ]
    outputs = [vinfo("y", [1, 4, 8, 8])]
    if gate_uses > 1:
        outputs.append(vinfo("g", [1, 4, 8, 8]))
    return make_model(nodes, [vinfo("x", [1, 3, 8, 8])], outputs, [init("w", w)])


def test_pattern_becomes_hardswish_and_matches():
    proto = _model(1 / 6)
    x = rng().standard_normal((1, 3, 8, 8)).astype(np.float32) * 4
    before = run_ort(proto, {"x": x})["y"]
    model = ir.serde.deserialize_model(proto)
    assert FuseHardSwishPatternPass()(model).modified
    assert [n.op_type for n in model.graph] == ["Conv", "HardSwish"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    np.testing.assert_allclose(run_ort(model, {"x": x})["y"], before, rtol=1e-5, atol=1e-5)


def test_other_constants_or_shared_gate_are_left_alone():
    for proto in (_model(0.2), _model(1 / 6, gate_uses=2)):
        model = ir.serde.deserialize_model(proto)
        assert not FuseHardSwishPatternPass()(model).modified
        assert "HardSigmoid" in [n.op_type for n in model.graph]


def _spelled_out(kind: str, hi: float = 6.0, shared_clip: bool = False):
    """paddle2onnx's spelling: Add(x, 3) -> Clip(0, hi) -> [Mul(x, .)] -> Div(., 6) / Mul(., 1/6)."""
    w = rng().standard_normal((4, 3, 3, 3)).astype(np.float32)
    inits = [init("w", w), init("three", np.array(3.0, np.float32)), init("lo", np.array(0.0, np.float32))]
    inits += [init("hi", np.array(hi, np.float32)), init("six", np.array(6.0, np.float32))]
    inits += [init("sixth", np.array(1 / 6, np.float32))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Add", ["c", "three"], ["a"], name="plus3"),
        helper.make_node("Clip", ["a", "lo", "hi"], ["r"], name="relu6"),
    ]
    outputs = [vinfo("y", [1, 4, 8, 8])]
    if kind == "hardswish_div":
        nodes += [helper.make_node("Mul", ["c", "r"], ["m"]), helper.make_node("Div", ["m", "six"], ["y"])]
    elif kind == "hardswish_mul":
        nodes += [helper.make_node("Mul", ["r", "c"], ["m"]), helper.make_node("Mul", ["sixth", "m"], ["y"])]
    else:  # a hard-sigmoid gate multiplying the conv output
        nodes += [helper.make_node("Div", ["r", "six"], ["g"]), helper.make_node("Mul", ["c", "g"], ["y"])]
    if shared_clip:
        outputs.append(vinfo("r", [1, 4, 8, 8]))
    return make_model(nodes, [vinfo("x", [1, 3, 8, 8])], outputs, inits)


@pytest.mark.parametrize(
    ("kind", "ops"),
    [
        ("hardswish_div", ["Conv", "HardSwish"]),
        ("hardswish_mul", ["Conv", "HardSwish"]),
        ("gate", ["Conv", "HardSwish"]),  # the gate becomes HardSigmoid, then x * HardSigmoid(x) HardSwish
    ],
)
def test_spelled_out_hard_activations_become_one_op_and_match(kind, ops):
    proto = _spelled_out(kind)
    x = rng().standard_normal((1, 3, 8, 8)).astype(np.float32) * 4
    before = run_ort(proto, {"x": x})["y"]
    model = ir.serde.deserialize_model(proto)
    assert FuseHardSwishPatternPass()(model).modified
    assert [n.op_type for n in model.graph] == ops
    assert [o.name for o in model.graph.outputs] == ["y"]
    np.testing.assert_allclose(run_ort(model, {"x": x})["y"], before, rtol=1e-5, atol=1e-5)


def test_spelled_out_patterns_with_other_constants_or_shared_intermediates_are_left_alone():
    for proto in (_spelled_out("hardswish_div", hi=5.0), _spelled_out("hardswish_div", shared_clip=True)):
        model = ir.serde.deserialize_model(proto)
        FuseHardSwishPatternPass()(model)
        assert "Clip" in [n.op_type for n in model.graph]


def _opset(model: ir.Model) -> int:
    return model.opset_imports[""]


def test_an_opset_13_model_that_gains_a_hardswish_is_raised_to_opset_14_and_stays_valid():
    """torch's opset-13 export of hard-swish is x * HardSigmoid(x); HardSwish only exists from opset 14, so a
    model left at 13 would be one the ONNX checker and onnxruntime refuse."""
    proto = _model(1 / 6)
    proto.opset_import[0].version = 13
    x = rng().standard_normal((1, 3, 8, 8)).astype(np.float32) * 4
    before = run_ort(proto, {"x": x})["y"]
    model = ir.serde.deserialize_model(proto)
    assert FuseHardSwishPatternPass()(model).modified
    assert _opset(model) == 14
    out = ir.serde.serialize_model(model)
    onnx.checker.check_model(out, full_check=True)
    np.testing.assert_allclose(run_ort(out, {"x": x})["y"], before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("opset", "alpha"), [(13, 0.2), (17, 1 / 6)])
def test_the_opset_is_left_alone_without_a_new_hardswish_or_when_already_new_enough(opset, alpha):
    proto = _model(alpha)
    proto.opset_import[0].version = opset
    model = ir.serde.deserialize_model(proto)
    FuseHardSwishPatternPass()(model)
    assert _opset(model) == opset
