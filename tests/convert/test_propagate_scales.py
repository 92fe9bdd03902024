"""propagate_scales: encodings flow unchanged through value-preserving ops; a Concat without its own
encoding takes its inputs' shared one (none is invented for inputs on different grids, nor for an average
the file leaves in float); a non-negative int8 tensor is relabelled uint8 (same bits)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit import ops
from int8kit.convert.pipeline import convert
from int8kit.ir.encoding import Encoding, covering, encoding

from ._util import QDQGraph, run_int8kit, run_ort, run_until, value


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


def _concat_of(b_scale: float, b_type) -> ir.Model:
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 4, relu=True, output="a"), 0.01, 0, np.uint8)
    b = g.qdq(g.conv(x, 3, 4, relu=True, output="b"), b_scale, 0, b_type)
    cat = g.node("Concat", [a, b], "cat", axis=1)
    y = g.node("MaxPool", [cat], "y", kernel_shape=[2, 2])
    return run_until(g.build([y]), "propagate_scales")


def test_concat_without_its_own_encoding_takes_its_inputs_shared_one():
    enc = encoding(value(_concat_of(0.01, np.uint8), "cat"))
    assert (enc.dtype, enc.scale) == (ops.UINT8, pytest.approx(0.01))


def test_concat_of_inputs_on_different_grids_gets_no_invented_encoding():
    """The file concatenates the dequantized floats: any one grid for the output would round some input."""
    m = _concat_of(0.03, np.int8)
    assert encoding(value(m, "cat")) is None
    assert encoding(value(m, "a")).scale == pytest.approx(0.01)  # inputs keep their own encodings


def test_average_pool_the_file_leaves_in_float_gets_no_encoding():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    r = g.qdq(g.conv(x, 3, 4, relu=True), 0.01, 0, np.uint8)
    y = g.node("GlobalAveragePool", [r], "gap")
    assert encoding(value(run_until(g.build([y]), "propagate_scales"), "gap")) is None


@pytest.mark.parametrize("pad_value", [0.0, 1.0])
def test_a_pad_of_a_value_passes_no_encoding_forward(pad_value):
    """EfficientViT pads its attention's values with 1.0 (F.pad(v, (0, 1), value=1)) and the file leaves the
    result float: on the input's grid of 0.005, 1.0 is 200 codes and saturated at 127. A zero pad is exact."""
    g = QDQGraph()
    x = g.qdq("input", 0.005, 0, np.int8)
    t = g.node("Transpose", [x], "moved", perm=[0, 1, 3, 2])
    pads = g.const("pads", np.array([0, 0, 0, 0, 0, 0, 0, 1], np.int64))
    fill = g.const("fill", np.array(pad_value, np.float32))
    y = g.node("Pad", [t, pads, fill], "padded", mode="constant")
    model = g.build([y])
    m = run_until(model, "propagate_scales")
    assert encoding(value(m, "moved")).scale == pytest.approx(0.005)
    assert (encoding(value(m, "padded")) is None) == (pad_value != 0.0)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32) * 0.3
    np.testing.assert_array_equal(run_int8kit(convert(model).model, x), run_ort(model, x, optimize=False))


def test_covering_of_equal_encodings_is_that_encoding():
    e = Encoding(ops.UINT8, 0.1, 7)
    assert covering([e, e]) == e
