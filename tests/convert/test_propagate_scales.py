"""propagate_scales: encodings flow unchanged through value-preserving ops; a Concat without its own
encoding gets one covering its inputs; a non-negative int8 tensor is relabelled uint8 (same bits)."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit import ops
from int8kit.ir.encoding import Encoding, covering, encoding

from ._util import QDQGraph, run_until, value


def test_encoding_flows_through_maxpool_and_flatten():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    c = g.conv(x, 3, 4, relu=True, output="r")
    c = g.qdq(c, 0.01, 3, np.uint8)
    p = g.node("MaxPool", [c], "pool", kernel_shape=[2, 2], strides=[2, 2])
    f = g.node("Flatten", [p], "flat")
    w, _, _ = g.weight(g.rng.standard_normal((5, 64)).astype(np.float32))
    y = g.node("Gemm", [f, w], "y", transB=1)
    before = run_until(g.build([y]), "fuse")
    assert encoding(value(before, "pool")) is None and encoding(value(before, "flat")) is None
    m = run_until(g.build([y]), "propagate_scales")
    for name in ("pool", "flat"):
        enc = encoding(value(m, name))
        assert (enc.dtype, enc.zero_point) == (ops.UINT8, 3) and enc.scale == pytest.approx(0.01)


def test_concat_without_its_own_encoding_covers_its_inputs():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 4, relu=True, output="a"), 0.01, 0, np.uint8)
    b = g.qdq(g.conv(x, 3, 4, output="b"), 0.03, 0, np.int8)
    cat = g.node("Concat", [a, b], "cat", axis=1)
    y = g.node("MaxPool", [cat], "y", kernel_shape=[2, 2])
    m = run_until(g.build([y]), "propagate_scales")
    enc = encoding(value(m, "cat"))
    lo, hi = enc.real_range()
    assert lo <= -128 * 0.03 + 1e-6 and hi >= 255 * 0.01 - 1e-6  # every input value is representable
    assert encoding(value(m, "a")).scale == pytest.approx(0.01)  # inputs keep their own encodings


def test_covering_of_equal_encodings_is_that_encoding():
    e = Encoding(ops.UINT8, 0.1, 7)
    assert covering([e, e]) == e
