"""Intake's constant lift (onnx_ir's LiftConstantsToInitializersPass, every size and form): every Constant
form becomes an initializer, outputs unchanged."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.intake import cleanup_passes

from ._util import assert_same_outputs, make_model, op_types, rng, vinfo


def _lift():
    """The lift exactly as intake configures it."""
    (lift,) = [p for p in cleanup_passes() if type(p).__name__ == "LiftConstantsToInitializersPass"]
    return lift


def _paddle_style_model():
    """Weights in Constant nodes, as Paddle exports them, in each attribute form."""
    r = rng()
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=helper.make_tensor("w", 1, w.shape, w.ravel())),
        helper.make_node("Constant", [], ["scale"], value_float=0.75),
        helper.make_node("Constant", [], ["bias"], value_floats=[0.1, -0.2, 0.3, 0.4]),
        helper.make_node("Constant", [], ["shape"], value_ints=[2, -1]),
        helper.make_node("Constant", [], ["axis"], value_int=1),
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["flat"]),
        helper.make_node("ReduceSum", ["flat", "axis_1d"], ["mx"], keepdims=0),
        helper.make_node("Unsqueeze", ["axis", "zero"], ["axis_1d"]),
        helper.make_node("Constant", [], ["zero"], value_ints=[0]),
        helper.make_node("ReduceSum", ["c", "axes23"], ["pooled"], keepdims=0),
        helper.make_node("Constant", [], ["axes23"], value_ints=[2, 3]),
        helper.make_node("Add", ["pooled", "bias"], ["y"]),
    ]
    return make_model(nodes, [vinfo("x", [2, 3, 6, 6])], [vinfo("y", [2, 4]), vinfo("mx", [2])])


def test_constants_become_initializers_same_outputs():
    proto = _paddle_style_model()
    model = ir.serde.deserialize_model(proto)
    result = _lift()(model)
    assert result.modified
    assert "Constant" not in op_types(model)
    inits = model.graph.initializers
    assert {"w", "scale", "bias", "shape", "axis", "zero", "axes23"} <= set(inits)
    assert inits["scale"].const_value.numpy().dtype == np.float32
    assert inits["shape"].const_value.numpy().dtype == np.int64
    np.testing.assert_array_equal(inits["shape"].const_value.numpy(), [2, -1])
    assert inits["axis"].const_value.numpy().shape == ()
    feeds = {"x": rng().standard_normal((2, 3, 6, 6)).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)


def test_constant_that_is_graph_output_is_kept():
    proto = make_model(
        [
            helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0]),
            helper.make_node("Identity", ["x"], ["y"]),
        ],
        [vinfo("x", [2])],
        [vinfo("y", [2]), vinfo("k", [2])],
    )
    model = ir.serde.deserialize_model(proto)
    assert not _lift()(model).modified
    assert_same_outputs(proto, model, {"x": np.ones(2, np.float32)})


def test_no_constants_no_change():
    proto = make_model([helper.make_node("Relu", ["x"], ["y"])], [vinfo("x", [3])], [vinfo("y", [3])])
    model = ir.serde.deserialize_model(proto)
    assert not _lift()(model).modified
