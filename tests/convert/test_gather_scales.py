"""gather_scales: each activation QuantizeLinear's encoding (type, scale, zero point), exactly as written."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit import ops
from int8kit.errors import UnsupportedOpError
from int8kit.ir.encoding import Encoding, encoding

from ._util import QDQGraph, run_until, value


def _gathered(scale: float, zero_point: int, dtype) -> Encoding | None:
    g = QDQGraph()
    x = g.qdq("input", scale, zero_point, dtype)
    y = g.conv(x, 3, 4, output="y")
    m = run_until(g.build([y]), "gather_scales")
    return encoding(value(m, "input"))


@pytest.mark.parametrize(
    ("scale", "zp", "dtype", "want"),
    [
        (0.02, 0, np.uint8, Encoding(ops.UINT8, 0.02, 0)),
        (0.03, 0, np.int8, Encoding(ops.INT8, 0.03, 0)),
        (0.05, 100, np.uint8, Encoding(ops.UINT8, 0.05, 100)),
        (0.01, -20, np.int8, Encoding(ops.INT8, 0.01, -20)),
    ],
)
def test_encoding_is_recorded_exactly_as_written(scale, zp, dtype, want):
    got = _gathered(scale, zp, dtype)
    assert (got.dtype, got.zero_point) == (want.dtype, want.zero_point)
    assert got.scale == pytest.approx(np.float32(scale), rel=1e-7)


def test_real_range_follows_the_spec():
    # DequantizeLinear: real = (q - zero_point) * scale over the type's whole range.
    assert Encoding(ops.UINT8, 0.05, 100).real_range() == pytest.approx((-100 * 0.05, 155 * 0.05))
    assert Encoding(ops.INT8, 0.01, -20).real_range() == pytest.approx((-108 * 0.01, 147 * 0.01))


def test_weight_pairs_give_no_activation_encoding():
    g = QDQGraph()
    y = g.conv("input", 3, 4, output="y")  # weights behind DQ only: no activation range anywhere
    m = run_until(g.build([y]), "gather_scales")
    assert all(encoding(v) is None for node in m.graph for v in node.inputs if v is not None)


def test_16_bit_activation_quantization_is_refused_naming_the_node():
    g = QDQGraph()
    x = g.qdq("input", 0.001, 0, np.uint16)
    y = g.conv(x, 3, 4, output="y")
    with pytest.raises(UnsupportedOpError, match="q1_quant.*uint16"):
        run_until(g.build([y]), "gather_scales")
