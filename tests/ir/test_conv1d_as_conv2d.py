"""Conv1dAsConv2dPass: a 1-D Conv computes what onnxruntime computes on the original graph, FP32 and INT8
(ECA-Net's channel attention, from int8kit's and onnxruntime's QDQ files), with the Conv kept INT8."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from convert._util import (  # tests/convert helpers (tests/ is on sys.path)
    SIZE,
    Weights,
    assert_agrees,
    calib_inputs,
    classifier,
    eval_inputs,
    int8kit_qdq,
    ort_qdq,
    run_ort,
)
from onnx import helper

from int8kit.ir.conv1d_as_conv2d import Conv1dAsConv2dPass
from int8kit.runtime.predictor import Predictor

from ._util import assert_same_outputs, init, make_model, op_types, rng, vinfo
from ._util import run_ort as run_ort_feeds


@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[3], pads=[1, 1]),
        dict(kernel_shape=[3], strides=[2], dilations=[2], pads=[2, 1], group=2),
        dict(kernel_shape=[3], auto_pad="SAME_UPPER"),
        dict(),  # every attribute defaulted
    ],
)
def test_a_1d_conv_with_bias_and_batchnorm_matches_onnxruntime(attrs):
    g = attrs.get("group", 1)
    w = rng().standard_normal((6, 4 // g, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", **attrs),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"]),
    ]
    inits = [
        init("w", w),
        init("b", rng().standard_normal(6).astype(np.float32)),
        init("gamma", np.linspace(0.5, 1.5, 6).astype(np.float32)),
        init("beta", np.linspace(-1, 1, 6).astype(np.float32)),
        init("mean", np.linspace(-0.2, 0.2, 6).astype(np.float32)),
        init("var", np.linspace(0.5, 2, 6).astype(np.float32)),
    ]
    proto = make_model(nodes, [vinfo("x", ["N", 4, 11])], [vinfo("y", None)], inits)
    model = ir.serde.deserialize_model(proto)
    assert Conv1dAsConv2dPass()(model).modified
    assert op_types(model).count("Conv") == 1 and "Unsqueeze" in op_types(model)
    x = rng().standard_normal((2, 4, 11)).astype(np.float32)
    assert_same_outputs(proto, model, {"x": x})
    got = Predictor(proto, num_threads=1).run(x)  # the engine: intake (BN folded first), fusions, kernels
    np.testing.assert_allclose(got, run_ort_feeds(proto, {"x": x})["y"], rtol=1e-4, atol=1e-5)


def test_2d_convs_and_non_constant_weights_are_left_alone():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])]
    proto = make_model(
        nodes, [vinfo("x", [1, 2, 5, 5])], [vinfo("y", None)], [init("w", np.ones((2, 2, 3, 3), np.float32))]
    )
    assert not Conv1dAsConv2dPass()(ir.serde.deserialize_model(proto)).modified
    runtime_weight = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        [vinfo("x", [1, 2, 5]), vinfo("w", [2, 2, 3])],
        [vinfo("y", None)],
    )
    assert not Conv1dAsConv2dPass()(ir.serde.deserialize_model(runtime_weight)).modified


def _eca_net():
    """conv -> ReLU -> ECA (global pool, Conv1d over channels, sigmoid, multiply) -> head."""
    w = Weights(5)
    c = 16
    inits = [
        w("w0", c, 3, 3, 3, scale=0.3),
        w("b0", c, scale=0.1),
        w("eca", 1, 1, 3, scale=0.5),
        w("fc", 10, c, scale=0.3),
    ]
    inits += [init("axes2", np.array([2], np.int64)), init("axes3", np.array([3], np.int64))]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["a"], name="relu0"),
        helper.make_node("GlobalAveragePool", ["a"], ["s"], name="pool"),
        helper.make_node("Squeeze", ["s", "axes3"], ["s3"], name="squeeze"),
        helper.make_node("Transpose", ["s3"], ["t"], perm=[0, 2, 1], name="to_channels_last"),
        helper.make_node("Conv", ["t", "eca"], ["e"], pads=[1, 1], name="eca_conv"),
        helper.make_node("Transpose", ["e"], ["et"], perm=[0, 2, 1], name="back"),
        helper.make_node("Unsqueeze", ["et", "axes3"], ["e4"], name="unsqueeze"),
        helper.make_node("Sigmoid", ["e4"], ["gate"], name="gate"),
        helper.make_node("Mul", ["a", "gate"], ["scaled"], name="excite"),
        helper.make_node("GlobalAveragePool", ["scaled"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "eca")


def test_eca_net_fp32_matches_onnxruntime():
    model, x = _eca_net(), eval_inputs(n=32)
    got = Predictor(model, num_threads=2).run(x)
    np.testing.assert_allclose(got, run_ort(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["int8kit", "ort_pt_u8", "ort_pc_s8_sym"])
def test_eca_net_int8_matches_the_qdq_model_with_the_1d_conv_int8(variant):
    from int8kit.convert.pipeline import convert

    model = _eca_net()
    qdq = int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)
    result = convert(qdq)
    eca = next(n for n in result.model.graph if n.name == "eca_conv")
    assert eca.op_type == "Conv" and eca.domain and "x_scale" in eca.attributes  # an INT8 int8kit.Conv
    x = eval_inputs(n=64)
    assert_agrees(Predictor(result.model, num_threads=2).run(x), run_ort(qdq, x, optimize=False), cos=0.9995)
    program = Predictor(result.model, num_threads=1).program({"x": (4, 3, SIZE, SIZE)})
    assert not [impl for impl in program.impls if impl.startswith("ref")], program.impls
