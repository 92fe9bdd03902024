"""Element-wise Add/Mul between INT8 tensors run INT8 (int8kit.Binary): the squeeze-excite multiply keeps
data INT8 into the projection conv, and an Add no conv can absorb is an INT8 binary op; both match the QDQ
model run in onnxruntime."""

from __future__ import annotations

import numpy as np

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, assert_agrees, eval_inputs, run_int8kit, run_ort


def _binaries(model) -> list:
    return [n for n in model.graph if n.domain == "int8kit" and n.op_type == "Binary"]


def test_squeeze_excite_multiply_runs_int8(qdq):
    model = qdq("hardswish_se_tiny", "ort_pc_s8_sym")
    result = convert(model)
    muls = [n for n in _binaries(result.model) if n.attributes["alg"].as_string() == "mul"]
    # the squeeze-excite multiply, and the x * HardSigmoid(x) products whose gates the file rounds
    assert muls, "\n".join(result.summary.lines())
    assert any(m.attributes["y_type"].as_int() != 1 for m in muls)  # one writes INT8 for the projection conv
    x = eval_inputs()
    got = run_int8kit(result.model, x)
    assert_agrees(got, run_ort(model, x))


def test_add_of_two_pools_runs_int8():
    g = QDQGraph(shape=("N", 3, 8, 8))
    x = g.qdq("input", 0.03, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 8, relu=True, output="a"), 0.02, 0, np.uint8)
    c = g.qdq(g.conv(x, 3, 8, relu=True, output="c"), 0.015, 0, np.uint8)
    pa = g.qdq(g.node("MaxPool", [a], "pa", kernel_shape=[2, 2], strides=[2, 2]), 0.02, 0, np.uint8)
    pc = g.qdq(g.node("MaxPool", [c], "pc", kernel_shape=[2, 2], strides=[2, 2]), 0.015, 0, np.uint8)
    s = g.qdq(g.node("Add", [pa, pc], "s"), 0.03, 0, np.uint8)
    y = g.conv(s, 8, 4, output="y")
    model = g.build([y])
    result = convert(model)
    adds = [n for n in _binaries(result.model) if n.attributes["alg"].as_string() == "add"]
    assert len(adds) == 1, "\n".join(result.summary.lines())
    xin = np.random.default_rng(3).standard_normal((8, 3, 8, 8)).astype(np.float32)
    got, want = run_int8kit(result.model, xin), run_ort(model, xin, optimize=False)
    assert_agrees(got.reshape(8, -1), want.reshape(8, -1))
    # Within one output step of the QDQ model at the Add (scale 0.03) times the last conv's weights.
    assert np.abs(got - want).max() < 0.03 * 8 * 9 * 3
