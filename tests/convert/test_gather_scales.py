"""gather_scales: each activation Q->DQ pair's range, as a threshold plus signedness, on its tensor."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.convert.scales import int8_encoding, is_unsigned, threshold

from ._util import QDQGraph, run_until, value


def _gathered(scale: float, zero_point: int, dtype) -> tuple[float | None, bool]:
    g = QDQGraph()
    x = g.qdq("input", scale, zero_point, dtype)
    y = g.conv(x, 3, 4, output="y")
    m = run_until(g.build([y]), "gather_scales")
    v = value(m, "input")
    return threshold(v), is_unsigned(v)


def test_uint8_zero_point_0_is_unsigned_with_255_steps():
    t, unsigned = _gathered(0.02, 0, np.uint8)
    assert unsigned
    assert t == pytest.approx(255 * 0.02)  # real range [0, 255 * s]


def test_int8_symmetric_is_signed_with_127_steps():
    t, unsigned = _gathered(0.03, 0, np.int8)
    assert not unsigned
    assert t == pytest.approx(127 * 0.03)


@pytest.mark.parametrize(
    ("scale", "zp", "dtype", "lo", "hi"),
    [
        (0.05, 100, np.uint8, -100 * 0.05, 155 * 0.05),  # u8: [(0 - zp) s, (255 - zp) s]
        (0.05, 200, np.uint8, -200 * 0.05, 55 * 0.05),
        (0.01, -20, np.int8, -108 * 0.01, 147 * 0.01),  # s8: [(-128 - zp) s, (127 - zp) s]
    ],
)
def test_asymmetric_range_is_widened_to_the_symmetric_one_covering_it(scale, zp, dtype, lo, hi):
    t, unsigned = _gathered(scale, zp, dtype)
    assert not unsigned
    assert t == pytest.approx(max(-lo, hi))


def test_encoding_follows_the_range():
    g = QDQGraph()
    a = g.qdq("input", 0.02, 0, np.uint8)
    b = g.conv(a, 3, 4, output="c1")
    b = g.qdq(b, 0.03, 0, np.int8)
    y = g.conv(b, 4, 4, output="y")
    m = run_until(g.build([y]), "gather_scales")
    enc_a, enc_b = int8_encoding(value(m, "input")), int8_encoding(value(m, "c1"))
    assert (enc_a.dtype, enc_a.scale) == (2, pytest.approx(0.02))  # uint8, the same scale as the pair
    assert (enc_b.dtype, enc_b.scale) == (3, pytest.approx(0.03))  # int8


def test_weight_pairs_and_non_int8_pairs_give_no_activation_range():
    g = QDQGraph()
    y = g.conv("input", 3, 4, output="y")  # weights behind DQ only: no activation range anywhere
    m = run_until(g.build([y]), "gather_scales")
    assert all(threshold(v) is None for node in m.graph for v in node.inputs if v is not None)
