"""Bias correction: the mean output shift of rounded weights, computed per output channel from the mean input,
against onnxruntime running the same convolution on the data, and its effect on a QDQ model's mean error."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.quantize.api import QuantizeConfig, quantize_with_report
from int8kit.quantize.bias_correction import MeanInputs, conv_output_mean, gemm_output_mean

ort = pytest.importorskip("onnxruntime")


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _one_op(node: onnx.NodeProto, x_shape, inits) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "attrs",
    [
        {"pads": [1, 1, 1, 1]},
        {"pads": [0, 2, 1, 0], "strides": [2, 2]},
        {"pads": [2, 2, 2, 2], "dilations": [2, 2], "group": 2},
        {"pads": [1, 1, 1, 1], "group": 4},  # depthwise
    ],
)
def test_conv_output_mean_matches_onnxruntime_on_the_data(attrs):
    """Linearity: mean over images and positions of Conv(x, W) = conv_output_mean(mean over images of x, W),
    borders, strides, dilations and groups included."""
    rng = np.random.default_rng(0)
    group = attrs.get("group", 1)
    w = rng.standard_normal((4, 4 // group, 3, 3)).astype(np.float32)
    x = (rng.standard_normal((16, 4, 7, 9)) + rng.uniform(-2, 2, (1, 4, 7, 9))).astype(np.float32)
    model = _one_op(helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs), x.shape, {"w": w})
    want = _run(model, x).mean(axis=(0, 2, 3))
    node = ir.serde.deserialize_model(model).graph.node(0)
    means = MeanInputs(["x"])
    for half in np.array_split(x, 2):
        means.update({"x": half})
    np.testing.assert_allclose(conv_output_mean(node, means.mean("x"), w), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_output_mean_matches_onnxruntime(trans_b):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 5) if trans_b else (5, 6)).astype(np.float32)
    x = (rng.standard_normal((32, 5)) + 1.5).astype(np.float32)
    node_proto = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=trans_b, alpha=0.5)
    model = _one_op(node_proto, x.shape, {"w": w})
    node = ir.serde.deserialize_model(model).graph.node(0)
    np.testing.assert_allclose(gemm_output_mean(node, x.mean(axis=0), w), _run(model, x).mean(axis=0), rtol=1e-5)


def _depthwise_net(bias: bool) -> onnx.ModelProto:
    """Conv -> Relu -> depthwise Conv (coarse weights: each channel's few taps round far) -> Relu -> Conv."""
    rng = np.random.default_rng(2)
    w0 = (rng.standard_normal((8, 3, 3, 3)) * 0.5).astype(np.float32)
    dw = (rng.standard_normal((8, 1, 3, 3)) * rng.uniform(0.1, 2, (8, 1, 1, 1))).astype(np.float32)
    w2 = (rng.standard_normal((4, 8, 1, 1)) * 0.3).astype(np.float32)
    inits = {"w0": w0, "dw": dw, "w2": w2}
    dw_inputs = ["r0", "dw"]
    if bias:
        inits["dwb"] = rng.normal(0, 0.1, 8).astype(np.float32)
        dw_inputs.append("dwb")
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", dw_inputs, ["c1"], name="dw", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("bias", [True, False])
def test_bias_correction_removes_the_mean_error_of_the_qdq_model(bias):
    """onnxruntime runs FP32 and QDQ models on the calibration data: with correction the per-channel mean of the
    output error is a fraction of the uncorrected one; without it, every bias is the FP32 model's."""
    model = _depthwise_net(bias)
    x = (np.random.default_rng(3).standard_normal((64, 3, 8, 8)) + 1.0).astype(np.float32)

    def quantize(correct: bool) -> onnx.ModelProto:
        config = QuantizeConfig(num_samples=64, backend="onnxruntime", bias_correction=correct)
        return quantize_with_report(model, x, config).to_proto()

    fp32 = _run(model, x)
    errors = {c: np.abs((_run(quantize(c), x) - fp32).mean(axis=(0, 2, 3))).mean() for c in (False, True)}
    assert errors[True] < 0.5 * errors[False]
    uncorrected = {i.name: numpy_helper.to_array(i) for i in quantize(False).graph.initializer}
    if bias:
        np.testing.assert_array_equal(uncorrected["dwb"], numpy_helper.to_array(model.graph.initializer[3]))
