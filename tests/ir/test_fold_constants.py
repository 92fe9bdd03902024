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


def test_a_scalar_result_stays_a_scalar():
    """NF-Net's skip gain: Mul of two 0-D constants. Its initializer must be 0-D like its value (a [1] tensor
    under a () value made onnx's shape inference fail on the whole model)."""
    nodes = [
        helper.make_node("Mul", ["g", "two"], ["g2"], name="scale_gain"),
        helper.make_node("Mul", ["x", "g2"], ["y"], name="apply_gain"),
    ]
    inits = [init("g", np.array(0.5, np.float32)), init("two", np.array(2.0, np.float32))]
    model = ir.serde.deserialize_model(make_model(nodes, [vinfo("x", [2, 3])], [vinfo("y", [2, 3])], inits))
    assert FoldConstantsPass()(model).modified
    gain = model.graph.node(0).inputs[1]
    assert gain.const_value.shape == () and gain.shape == ir.Shape([])
    import onnx

    onnx.shape_inference.infer_shapes(ir.serde.serialize_model(model), strict_mode=True)


def test_a_large_weight_computed_from_a_weight_as_large_folds(monkeypatch):
    """Weight standardisation (NF-Net, BiT): the conv weight is (w - mean) / std of a stored weight. The size
    limit is for results larger than their inputs (ConstantOfShape), not for a weight computed from one."""
    from int8kit.ir import fold_constants

    monkeypatch.setattr(fold_constants, "MAX_ELEMENTS", 16)
    w = rng().standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["w"], ["m"], axes=[1, 2, 3], keepdims=1, name="mean"),
        helper.make_node("Sub", ["w", "m"], ["wc"], name="center"),
        helper.make_node("Conv", ["x", "wc"], ["y"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("ConstantOfShape", ["big"], ["zeros"], name="zeros"),
    ]
    inits = [init("w", w), init("big", np.array([64], np.int64))]
    outputs = [vinfo("y", [1, 4, 8, 8]), vinfo("zeros", [64])]
    model = ir.serde.deserialize_model(make_model(nodes, [vinfo("x", [1, 3, 8, 8])], outputs, inits))
    FoldConstantsPass()(model)
    assert [n.op_type for n in model.graph] == ["Conv", "ConstantOfShape"]
    np.testing.assert_allclose(model.graph.node(0).inputs[1].const_value.numpy(), w - w.mean((1, 2, 3), keepdims=True))
