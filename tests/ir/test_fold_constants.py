"""Constant arithmetic folds into initializers; Q/DQ and random ops stay; results match onnxruntime."""

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.fold_constants import FoldConstantsPass
from tests.ir._util import init, make_model, rng, run_ort, vinfo


def _bias_reshape_model():
    """paddle2onnx's bias: Conv without bias, Add(conv, Reshape(b, [1, C, 1, 1])), and Mul of two constants."""
    w = rng().standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Reshape", ["b", "shape"], ["b4"], name="reshape_bias"),
        helper.make_node("Mul", ["b4", "two"], ["b4x2"], name="scale_bias"),
        helper.make_node("Add", ["c", "b4x2"], ["y"], name="add_bias"),
    ]
    inits = [
        init("w", w),
        init("b", rng().standard_normal(4).astype(np.float32)),
        init("shape", np.array([1, 4, 1, 1], np.int64)),
        init("two", np.array(2.0, np.float32)),
    ]
    return make_model(nodes, [vinfo("x", [1, 3, 8, 8])], [vinfo("y", [1, 4, 8, 8])], inits)


def test_constant_subgraph_becomes_one_initializer_and_the_model_agrees():
    proto = _bias_reshape_model()
    x = rng().standard_normal((1, 3, 8, 8)).astype(np.float32)
    before = run_ort(proto, {"x": x})["y"]
    model = ir.serde.deserialize_model(proto)
    assert FoldConstantsPass()(model).modified
    assert [n.op_type for n in model.graph] == ["Conv", "Add"]
    bias = model.graph.node(1).inputs[1]
    assert bias.is_initializer() and bias.name == "b4x2" and bias.const_value.shape == (1, 4, 1, 1)
    np.testing.assert_allclose(run_ort(model, {"x": x})["y"], before, rtol=1e-6)


def test_dequantize_of_constant_weights_and_random_ops_are_kept():
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], name="dq"),
        helper.make_node("Conv", ["x", "wd"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("RandomNormalLike", ["c"], ["noise"], name="noise"),
        helper.make_node("Add", ["c", "noise"], ["y"], name="add"),
    ]
    inits = [
        init("wq", rng().integers(-127, 127, (4, 3, 3, 3)).astype(np.int8)),
        init("s", np.array(0.01, np.float32)),
        init("z", np.array(0, np.int8)),
    ]
    model = ir.serde.deserialize_model(make_model(nodes, [vinfo("x", [1, 3, 8, 8])], [vinfo("y", [1, 4, 8, 8])], inits))
    assert not FoldConstantsPass()(model).modified
    assert [n.op_type for n in model.graph] == ["DequantizeLinear", "Conv", "RandomNormalLike", "Add"]
