"""FoldBatchNormPass: Conv+BN folds into the Conv; a lone BN becomes Mul+Add; outputs agree with ORT."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.ir.fold_batchnorm import FoldBatchNormPass

from ._util import assert_same_outputs, init, make_model, op_types, rng, vinfo

C_IN, C_OUT = 3, 6


def _bn_params(r, prefix, c):
    return [
        init(f"{prefix}_gamma", r.uniform(0.5, 2.0, c).astype(np.float32)),
        init(f"{prefix}_beta", r.standard_normal(c).astype(np.float32)),
        init(f"{prefix}_mean", r.standard_normal(c).astype(np.float32)),
        init(f"{prefix}_var", r.uniform(0.1, 3.0, c).astype(np.float32)),
    ]


def _bn(x, y, prefix, **attrs):
    names = [f"{prefix}_{p}" for p in ("gamma", "beta", "mean", "var")]
    return helper.make_node("BatchNormalization", [x, *names], [y], name=prefix, **attrs)


def _feeds():
    return {"x": rng().standard_normal((2, C_IN, 7, 7)).astype(np.float32)}


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("group", [1, 3])
def test_conv_bn_folds(with_bias, group):
    r = rng()
    w = r.standard_normal((C_OUT, C_IN // group, 3, 3)).astype(np.float32)
    inits = [init("w", w), *_bn_params(r, "bn", C_OUT)]
    conv_inputs = ["x", "w"]
    if with_bias:
        inits.append(init("b", r.standard_normal(C_OUT).astype(np.float32)))
        conv_inputs.append("b")
    proto = make_model(
        [
            helper.make_node("Conv", conv_inputs, ["c"], name="conv", pads=[1, 1, 1, 1], group=group),
            _bn("c", "y", "bn", epsilon=1e-3),
        ],
        [vinfo("x", [2, C_IN, 7, 7])],
        [vinfo("y", [2, C_OUT, 7, 7])],
        inits,
    )
    model = ir.serde.deserialize_model(proto)
    assert FoldBatchNormPass()(model).modified
    assert op_types(model) == ["Conv"]
    conv = model.graph[0]
    assert len(conv.inputs) == 3 and conv.inputs[2].const_value is not None
    assert conv.outputs[0].name == "y" and model.graph.outputs[0] is conv.outputs[0]
    # BN parameters and the old weights are gone from the initializers
    assert not any(name.startswith("bn_") for name in model.graph.initializers)
    assert "w" not in model.graph.initializers
    assert_same_outputs(proto, model, _feeds())


def test_shared_weight_not_modified_for_other_conv():
    """Two convs share W; only one is followed by a BN: the other must still see the original W."""
    r = rng()
    w = r.standard_normal((C_OUT, C_IN, 1, 1)).astype(np.float32)
    proto = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1"),
            _bn("c1", "y1", "bn"),
            helper.make_node("Conv", ["x", "w"], ["y2"], name="conv2"),
        ],
        [vinfo("x", [2, C_IN, 7, 7])],
        [vinfo("y1", [2, C_OUT, 7, 7]), vinfo("y2", [2, C_OUT, 7, 7])],
        [init("w", w), *_bn_params(r, "bn", C_OUT)],
    )
    model = ir.serde.deserialize_model(proto)
    FoldBatchNormPass()(model)
    assert op_types(model) == ["Conv", "Conv"]
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), w)
    assert_same_outputs(proto, model, _feeds())


def test_conv_output_used_elsewhere_does_not_fold_but_lowers():
    r = rng()
    proto = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            _bn("c", "bn_out", "bn"),
            helper.make_node("Add", ["bn_out", "c"], ["y"]),
        ],
        [vinfo("x", [2, C_IN, 7, 7])],
        [vinfo("y", [2, C_OUT, 7, 7])],
        [init("w", r.standard_normal((C_OUT, C_IN, 1, 1)).astype(np.float32)), *_bn_params(r, "bn", C_OUT)],
    )
    model = ir.serde.deserialize_model(proto)
    assert FoldBatchNormPass()(model).modified
    assert op_types(model) == ["Conv", "Mul", "Add", "Add"]
    assert_same_outputs(proto, model, _feeds())


@pytest.mark.parametrize("shape", [[2, C_IN, 7, 7], [2, C_IN]])
def test_lone_bn_becomes_mul_add(shape):
    r = rng()
    proto = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), _bn("r", "y", "bn", epsilon=1e-4)],
        [vinfo("x", shape)],
        [vinfo("y", shape)],
        _bn_params(r, "bn", C_IN),
    )
    model = ir.serde.deserialize_model(proto)
    assert model.graph[0].outputs[0].shape is None  # the pass must find the rank itself
    assert FoldBatchNormPass()(model).modified
    assert op_types(model) == ["Relu", "Mul", "Add"]
    assert model.graph.outputs[0].name == "y"
    for node in model.graph[1:]:
        const = node.inputs[1].const_value.numpy()
        assert const.shape == (C_IN,) + (1,) * (len(shape) - 2)
    feeds = {"x": rng().standard_normal(shape).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)


def test_bn_with_runtime_parameters_is_left():
    r = rng()
    params = _bn_params(r, "bn", C_IN)
    proto = make_model(
        [_bn("x", "y", "bn")],
        [vinfo("x", [2, C_IN, 4, 4]), vinfo("bn_mean", [C_IN])],
        [vinfo("y", [2, C_IN, 4, 4])],
        [p for p in params if p.name != "bn_mean"],
    )
    model = ir.serde.deserialize_model(proto)
    assert not FoldBatchNormPass()(model).modified
    assert op_types(model) == ["BatchNormalization"]


@pytest.mark.parametrize(
    ("op", "factor_shape", "folds"),
    [("Div", (1, C_OUT, 1, 1), True), ("Mul", (C_OUT, 1, 1), True), ("Div", (1,), True), ("Mul", (1, 1, 1, 7), False)],
    ids=["div-per-channel", "mul-per-channel", "div-scalar", "mul-along-width"],
)
def test_conv_scaled_per_channel_then_bn_folds_into_the_conv(op, factor_shape, folds):
    """torch's QAT ConvBn export: Conv -> Div(gamma / std) -> BN; a factor along another axis stays."""
    r = rng()
    inits = [
        init("w", r.standard_normal((C_OUT, C_IN, 3, 3)).astype(np.float32)),
        init("f", r.uniform(0.5, 2.0, factor_shape).astype(np.float32)),
        *_bn_params(r, "bn", C_OUT),
    ]
    proto = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node(op, ["c", "f"], ["s"], name="scale"),
            _bn("s", "y", "bn"),
        ],
        [vinfo("x", [2, C_IN, 7, 7])],
        [vinfo("y", [2, C_OUT, 7, 7])],
        inits,
    )
    model = ir.serde.deserialize_model(proto)
    FoldBatchNormPass()(model)
    assert op_types(model) == (["Conv"] if folds else ["Conv", op, "Mul", "Add"])
    assert_same_outputs(proto, model, _feeds())
