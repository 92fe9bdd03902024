"""A constant Add after a conv whose output the QDQ file rounds first (onnxruntime's hard-sigmoid gate:
conv -> Q/DQ -> + 3 -> Q/DQ -> Clip(0, 6) -> Q/DQ -> / 6) keeps that rounding and its saturation: folding
the 3 into the conv's bias used to skip them, so about one gate value in ten came out a grid step off.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort

C = 16


def _gate_net(per_channel_add: bool) -> onnx.ModelProto:
    g = QDQGraph(shape=("N", 3, 8, 8), seed=5)
    x = g.qdq("input", 0.02, 0, dtype=np.int8)
    feat = g.qdq(g.conv(x, 3, C, relu=True), 0.03, dtype=np.int8)
    conv = g.conv(feat, C, C, k=1, pads=[0, 0, 0, 0])
    s = g.qdq(conv, 0.012, dtype=np.int8)  # saturates at +-1.52: the file clips the conv output there
    if per_channel_add:
        three = g.const("three", np.linspace(2.5, 3.5, C, dtype=np.float32).reshape(1, C, 1, 1))
    else:  # onnxruntime quantizes the constant too: 127 * (3 / 127)
        three = g.node("DequantizeLinear", [g.const("q3", np.array(127, np.int8)), g.const("s3", np.float32(3 / 127))])
    a = g.qdq(g.node("Add", [s, three]), 0.035, dtype=np.int8)
    c = g.qdq(g.node("Clip", [a, g.const("lo", np.float32(0)), g.const("hi", np.float32(6))]), 0.035, dtype=np.int8)
    gate = g.qdq(g.node("Div", [c, g.const("six", np.float32(6))]), 0.006, dtype=np.int8)
    return g.build([g.node("Mul", [feat, gate])])


@pytest.mark.parametrize("per_channel_add", [False, True])
def test_gate_rounds_the_conv_output_before_adding(per_channel_add):
    qdq = _gate_net(per_channel_add)
    x = eval_inputs(n=16, size=8)
    got, want = run_int8kit(convert(qdq).model, x), run_ort(qdq, x, optimize=False)  # the file's exact semantics
    off = np.abs(got - want) > 1e-3 * np.abs(want).max()
    assert off.mean() <= 0.002, f"{off.mean():.2%} of the values are off the file's"
