"""Zero points are executed, not widened away: single quantized ops with asymmetric encodings, converted
and run by int8kit, match the QDQ model in onnxruntime to within the one output rounding int8kit skips.

The output Q/DQ pair's range also saturates the result (the QDQ model clamps there), which the INT8
model keeps as a clip post-op when it writes float.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import run_ort

Y_SCALE = 0.05


def _qdq_op(op: str, x_shape, w: np.ndarray, x_zp: int, x_type, y_zp: int, **attrs) -> onnx.ModelProto:
    s = float(np.abs(w).max() / 127)
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"]),
        helper.make_node(op, ["xd", "wd"], ["c"], **attrs),
        helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(x_zp, x_type), "xz"),
        numpy_helper.from_array(q, "wq"),
        numpy_helper.from_array(np.array(s, np.float32), "ws"),
        numpy_helper.from_array(np.array(Y_SCALE, np.float32), "ys"),
        numpy_helper.from_array(np.array(y_zp, np.uint8), "yz"),
    ]
    graph = helper.make_graph(
        nodes,
        "zp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _check(model: onnx.ModelProto, x: np.ndarray) -> None:
    want = run_ort(model, x, optimize=False)
    got = Predictor(convert(model).model, num_threads=1).run(x)
    steps = np.abs(got - want).max() / Y_SCALE
    assert steps <= 0.5 + 1e-3, f"INT8 result off by {steps:.2f} output steps"


@pytest.mark.parametrize("group", [1, 2, 8])
@pytest.mark.parametrize("pad", [0, 1])
@pytest.mark.parametrize(("x_zp", "x_type"), [(120, np.uint8), (-30, np.int8), (0, np.uint8)])
def test_conv_with_source_zero_point_including_padding(group, pad, x_zp, x_type):
    rng = np.random.default_rng(group * 10 + pad)
    w = rng.standard_normal((8, 8 // group, 3, 3)).astype(np.float32) * 0.3
    model = _qdq_op("Conv", (2, 8, 9, 9), w, x_zp, x_type, y_zp=100, pads=[pad] * 4, group=group)
    _check(model, rng.standard_normal((2, 8, 9, 9)).astype(np.float32))


@pytest.mark.parametrize("x_zp", [0, 77])
def test_gemm_with_source_zero_point(x_zp):
    rng = np.random.default_rng(x_zp)
    w = rng.standard_normal((10, 32)).astype(np.float32) * 0.2
    model = _qdq_op("Gemm", (3, 32), w, x_zp, np.uint8, y_zp=90, transB=1)
    _check(model, rng.standard_normal((3, 32)).astype(np.float32))


def test_asymmetric_output_feeding_another_conv():
    """An INT8 conv writing uint8 with a zero point into the next INT8 conv (dst and src zero points)."""
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2
    first = _qdq_op("Conv", (2, 8, 9, 9), w1, 120, np.uint8, y_zp=100, pads=[1] * 4)
    w2 = rng.standard_normal((4, 8, 1, 1)).astype(np.float32) * 0.3
    q2 = np.clip(np.rint(w2 / (np.abs(w2).max() / 127)), -127, 127).astype(np.int8)
    g = first.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(q2, "w2q"),
            numpy_helper.from_array(np.array(np.abs(w2).max() / 127, np.float32), "w2s"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("DequantizeLinear", ["w2q", "w2s"], ["w2d"]),
            helper.make_node("Conv", ["y", "w2d"], ["y2"]),
        ]
    )
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, None))
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    want = run_ort(first, x, optimize=False)
    got = Predictor(convert(first).model, num_threads=1).run(x)
    # The second conv's float output: errors are bounded by what rounding the first one's output does.
    bound = Y_SCALE * np.abs(w2).sum(axis=(1, 2, 3)).max()
    assert np.abs(got - want).max() <= bound


@pytest.mark.parametrize(("dtype", "zps"), [(np.int8, (0, 0, 0)), (np.uint8, (0, 0, 0)), (np.uint8, (30, 50, 100))])
def test_fused_residual_add_rounds_exactly_as_the_file(dtype, zps):
    """conv -> Q/DQ -> Add(skip) -> Q/DQ fused into one conv with a sum post-op: bit-exact with the QDQ model
    (the conv output's own rounding is kept as an fq post-op before the sum)."""
    from ._util import QDQGraph

    g = QDQGraph(shape=("N", 8, 6, 6))
    x = g.qdq("input", 0.03, zps[0], dtype)
    x = g.qdq(g.conv(x, 8, 8, k=1, output="x0"), 0.04, zps[0], dtype)
    a = g.qdq(g.conv(x, 8, 8, k=1, output="a"), 0.05, zps[1], dtype)
    s = g.qdq(g.node("Add", [a, x], "s"), 0.07, zps[2], dtype)
    model = g.build([g.node("MaxPool", [s], "y", kernel_shape=[1, 1])])
    result = convert(model)
    fused = [n for n in result.model.graph if n.op_type == "Conv" and "sum" in n.attributes["post_ops"].as_strings()]
    assert len(fused) == 1
    xin = np.random.default_rng(0).standard_normal((4, 8, 6, 6)).astype(np.float32)
    got = Predictor(result.model, num_threads=1).run(xin)
    np.testing.assert_allclose(got, run_ort(model, xin, optimize=False), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("dtype", "zps"), [(np.int8, (0, 0, 0)), (np.uint8, (126, 124, 17))])
def test_back_to_back_qdq_pairs_requantize_as_the_file_does(dtype, zps):
    """Q -> DQ -> Q' -> DQ' on one tensor (an exporter's Identity dropped between them): both roundings count,
    the second onto a narrower grid that clips (found by comparing the zoo's layers against onnxruntime)."""
    from ._util import QDQGraph

    g = QDQGraph(shape=("N", 3, 16, 16))
    x = g.qdq("input", 0.0333, zps[0], dtype)
    a = g.qdq(g.conv(x, 3, 16, k=3, output="a"), 0.0392, zps[1], dtype)
    h = g.qdq(g.node("Identity", [a], "h"), 0.0216, zps[2], dtype)
    model = g.build([g.node("MaxPool", [h], "y", kernel_shape=[1, 1])])
    xin = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    got = Predictor(convert(model).model, num_threads=1).run(xin)
    np.testing.assert_allclose(got, run_ort(model, xin, optimize=False), rtol=0, atol=1e-5)
