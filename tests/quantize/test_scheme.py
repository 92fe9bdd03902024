"""The shared int8 scheme: scales by hand, signedness from the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.quantize.scheme import activation_qparams, nonnegative_tensors, quantize_weight, weight_scales


def test_activation_scales_by_hand():
    assert activation_qparams(0.0, 5.1, unsigned=True).scale == pytest.approx(5.1 / 255, rel=1e-6)
    qp = activation_qparams(-3.0, 2.0, unsigned=False)
    assert (qp.dtype, qp.scale) == ("int8", pytest.approx(3.0 / 127, rel=1e-6))
    assert activation_qparams(0.0, 0.0, unsigned=True).scale == 1.0


def test_weight_quantization_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w[2] *= 10
    q, scales = quantize_weight(w, axis=0)
    expected = np.array([np.abs(w[c]).max() / 127 for c in range(4)], np.float32)
    np.testing.assert_allclose(scales, expected, rtol=1e-6)
    assert q.dtype == np.int8 and q.min() >= -127
    assert all(np.abs(q[c]).max() == 127 for c in range(4))
    np.testing.assert_allclose(q * scales[:, None, None, None], w, atol=float(expected.max()) / 2 + 1e-7)
    # axis 1 (MatMul / Gemm transB=0 layout [K, N])
    m = rng.standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(weight_scales(m, 1), np.abs(m).max(axis=0) / 127, rtol=1e-6)


def test_all_zero_channel_gets_scale_one():
    w = np.zeros((2, 4), np.float32)
    w[1] = 1.0
    q, scales = quantize_weight(w, axis=0)
    assert scales[0] == 1.0 and not q[0].any()


def test_nonnegative_tensors_follow_the_graph():
    six = numpy_helper.from_array(np.array(6.0, np.float32), "six")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    minus = numpy_helper.from_array(np.array(-1.0, np.float32), "minus")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Clip", ["x", "zero", "six"], ["relu6"]),
        helper.make_node("Clip", ["x", "minus", "six"], ["clip_neg"]),
        helper.make_node("MaxPool", ["r"], ["pool"], kernel_shape=[2, 2]),
        helper.make_node("Concat", ["pool", "relu6"], ["cat"], axis=1),
        helper.make_node("Concat", ["pool", "x"], ["cat_mixed"], axis=1),
        helper.make_node("Add", ["r", "relu6"], ["sum"]),
        helper.make_node("Sigmoid", ["x"], ["sig"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("cat", "cat_mixed", "sum")],
        [six, zero, minus],
    )
    found = nonnegative_tensors(onnx.helper.make_model(graph).graph)
    assert found == {"r", "relu6", "pool", "cat", "sig", "sum"}  # a sum of two non-negative tensors is too
