"""The converter rounds exactly where the QDQ file rounds, and nowhere else: an average the file leaves in
float is not rounded onto its input's grid, a Concat of inputs on different grids with no encoding of its
own is concatenated in float, and a graph output the file dequantizes comes out on its grid."""

from __future__ import annotations

import numpy as np

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort

STEP = 0.04


def _features(g: QDQGraph) -> str:
    x = g.qdq("input", 0.02, 128)
    return g.qdq(g.conv(x, 3, 16, relu=True), STEP)


def _both(qdq):
    x = eval_inputs(n=16, size=8)
    return run_int8kit(convert(qdq).model, x), run_ort(qdq, x, optimize=False)  # the file's exact semantics


def test_an_average_the_file_leaves_in_float_is_exact():
    g = QDQGraph(shape=("N", 3, 8, 8), seed=7)
    got, want = _both(g.build([g.node("GlobalAveragePool", [_features(g)])]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # was up to half a step (0.02) off


def test_a_concat_of_different_grids_without_its_own_encoding_is_exact():
    g = QDQGraph(shape=("N", 3, 8, 8), seed=7)
    f = _features(g)
    other = g.qdq(g.conv(f, 16, 8, k=1, pads=[0, 0, 0, 0]), 0.013, dtype=np.int8)
    got, want = _both(g.build([g.node("Concat", [f, other], axis=1)]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_a_dequantized_graph_output_comes_out_on_its_grid():
    g = QDQGraph(shape=("N", 3, 8, 8), seed=7)
    got, want = _both(g.build([g.qdq(g.node("GlobalAveragePool", [_features(g)]), 0.02)]))
    np.testing.assert_allclose(got / 0.02, np.rint(got / 0.02), atol=1e-3)  # was the unrounded mean
    # an exact tie (sum / 64 lands on .5 steps) may round either way in float: at most a few values
    assert (np.abs(got - want) > 1e-5).mean() <= 0.05
