"""insert_borders: QuantizeLinear only where float data enters INT8 ops, DequantizeLinear only before FP32
ops and graph outputs, Requantize where an INT8 tensor must change scale (a Concat's shared one)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit import ops
from int8kit.convert.pipeline import convert
from int8kit.convert.place_int8 import is_int8

from ._util import QDQGraph, assert_agrees, run_int8kit, run_ort, run_until


def _branchy():
    """conv1 feeds an INT8 conv2, an FP32 Sigmoid, and is itself a graph output."""
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    r = g.conv(x, 3, 4, relu=True, name="conv1", output="r")
    rq = g.qdq(r, 0.04, 0, np.uint8)  # covers r's values (max ~6) on the test inputs
    g.conv(rq, 4, 4, name="conv2", output="y")
    g.node("Sigmoid", [rq], "s", name="sigmoid")
    return g.build(["y", "s", "r"])


def test_quantize_only_at_the_input_and_dequantize_only_before_fp32_ops_and_outputs():
    m = run_until(_branchy(), "insert_borders")
    quants = [n for n in m.graph if n.op_type == "QuantizeLinear"]
    assert len(quants) == 1 and quants[0].inputs[0] is m.graph.inputs[0]
    dqs = [n for n in m.graph if n.op_type == "DequantizeLinear"]
    assert dqs
    for dq in dqs:
        out = dq.outputs[0]
        assert out.is_graph_output() or all(not is_int8(u.node) for u in out.uses()), dq.name
    assert [v.name for v in m.graph.outputs] == ["y", "s", "r"]
    r_dq = m.graph.outputs[2].producer()
    assert r_dq.op_type == "DequantizeLinear" and r_dq.inputs[0].producer().name == "conv1"
    assert not [n for n in m.graph if n.op_type == "Requantize"]


def test_branchy_graph_agrees_with_onnxruntime():
    model = _branchy()
    x = np.random.default_rng(5).standard_normal((8, 3, 8, 8)).astype(np.float32)
    from int8kit.runtime.predictor import Predictor

    got = Predictor(convert(model).model).run_dict({"input": x})
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(["y", "s", "r"], sess.run(["y", "s", "r"], {"input": x}), strict=True))
    assert all(got[name].dtype == np.float32 for name in want)
    # r: the QDQ model outputs r before its Q/DQ pair, the INT8 model r as stored (half a step off)
    np.testing.assert_allclose(got["r"], want["r"], rtol=0, atol=0.02 + 1e-6)
    # s and y read the quantized r in both models
    np.testing.assert_allclose(got["s"], want["s"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-3 * np.abs(want["y"]).max())


def _concat_mismatch():
    """Concat(conv_a, MaxPool(conv_b)): the pool runs at conv_b's narrow scale, the Concat at the wide one."""
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 4, relu=True, name="conv_a"), 0.02, 0, np.uint8)
    b = g.qdq(g.conv(x, 3, 4, relu=True, name="conv_b"), 0.005, 0, np.uint8)
    p = g.node("MaxPool", [b], "pool", name="pool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    cat = g.qdq(g.node("Concat", [a, p], "cat", name="concat", axis=1), 0.02, 0, np.uint8)
    y = g.conv(cat, 8, 4, name="conv_c", output="y")
    return g.build([y])


def test_concat_with_mismatched_input_scales_gets_a_requantize():
    m = run_until(_concat_mismatch(), "insert_borders")
    reqs = [n for n in m.graph if n.op_type == "Requantize" and n.domain == ops.DOMAIN]
    assert len(reqs) == 1
    req = reqs[0]
    assert req.inputs[0].producer().name == "pool"
    assert [u.node.name for u in req.outputs[0].uses()] == ["concat"]
    # the pool's data is at conv_b's scale (255 * 0.005 / 255); the Concat's shared range is 255 * 0.02
    assert req.attributes["x_scale"].as_float() == pytest.approx(0.005)
    assert req.attributes["y_scale"].as_float() == pytest.approx(0.02)
    assert req.attributes["y_type"].as_int() == ops.UINT8
    assert not [n for n in m.graph if n.op_type == "DequantizeLinear"]


def test_concat_with_requantize_agrees_with_onnxruntime():
    model = _concat_mismatch()
    result = convert(model)
    assert result.summary.conversions["Requantize"] == 1
    x = np.random.default_rng(6).standard_normal((64, 3, 8, 8)).astype(np.float32)
    got, want = run_int8kit(result.model, x), run_ort(model, x)
    assert_agrees(got.reshape(len(x), -1), want.reshape(len(x), -1), top1=0.95)


def test_int8_attributes_are_set_from_the_encodings():
    m = run_until(_branchy(), "insert_borders")
    conv1 = next(n for n in m.graph if n.name == "conv1")
    assert conv1.attributes["x_scale"].as_float() == pytest.approx(127 * 0.02 / 127)
    assert conv1.attributes["y_type"].as_int() == ops.UINT8
    assert conv1.attributes["y_scale"].as_float() == pytest.approx(0.04)
    assert conv1.outputs[0].dtype == ir.DataType.UINT8  # declared as the kernel writes it
