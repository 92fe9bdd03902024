"""propagate_scales: ranges flow through scale-preserving ops, a Concat shares the widest range, and
ReLU-like post-ops make a range unsigned."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.convert.scales import is_unsigned, threshold

from ._util import QDQGraph, run_until, value


def test_range_flows_through_maxpool_and_flatten():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    c = g.conv(x, 3, 4, relu=True, output="r")
    c = g.qdq(c, 0.01, 0, np.uint8)
    p = g.node("MaxPool", [c], "pool", kernel_shape=[2, 2], strides=[2, 2])
    f = g.node("Flatten", [p], "flat")
    w, _, _ = g.weight(g.rng.standard_normal((5, 64)).astype(np.float32))
    y = g.node("Gemm", [f, w], "y", transB=1)
    before = run_until(g.build([y]), "fuse")
    assert threshold(value(before, "pool")) is None and threshold(value(before, "flat")) is None
    m = run_until(g.build([y]), "propagate_scales")
    for name in ("pool", "flat"):
        assert threshold(value(m, name)) == pytest.approx(255 * 0.01)
        assert is_unsigned(value(m, name))


@pytest.mark.parametrize("second", [(0.05, np.uint8), (0.03, np.int8)])
def test_concat_shares_the_widest_input_range(second):
    scale, dtype = second
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 4, relu=True, output="a"), 0.01, 0, np.uint8)
    b = g.qdq(g.conv(x, 3, 4, relu=dtype == np.uint8, output="b"), scale, 0, dtype)
    cat = g.node("Concat", [a, b], "cat", axis=1)
    y = g.conv(g.qdq(cat, 0.02, 0, np.uint8), 8, 2, output="y")
    m = run_until(g.build([y]), "propagate_scales")
    # The Concat output holds exactly its inputs' values: the widest input range covers it.
    widest = max(255 * 0.01, (255 if dtype == np.uint8 else 127) * scale)
    unsigned = dtype == np.uint8
    for name in ("a", "b", "cat"):
        assert threshold(value(m, name)) == pytest.approx(widest), name
        assert is_unsigned(value(m, name)) == unsigned, name


def test_signed_range_after_a_relu_post_op_becomes_unsigned():
    # onnxruntime's ActivationSymmetric quantizes ReLU outputs as s8; the fused ReLU makes them >= 0.
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    r = g.qdq(g.conv(x, 3, 4, relu=True, output="r"), 0.04, 0, np.int8)
    n = g.qdq(g.conv(r, 4, 4, output="n"), 0.04, 0, np.int8)
    y = g.conv(n, 4, 2, output="y")
    fused = run_until(g.build([y]), "fuse")
    assert not is_unsigned(value(fused, "r"))
    m = run_until(g.build([y]), "propagate_scales")
    assert is_unsigned(value(m, "r")) and threshold(value(m, "r")) == pytest.approx(127 * 0.04)
    assert not is_unsigned(value(m, "n"))  # no ReLU: stays signed
