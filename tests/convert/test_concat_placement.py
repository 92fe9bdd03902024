"""A Concat joining an FP32 op's output (which the file quantizes) with INT8 conv outputs runs INT8, so one
FP32 op does not turn every later Concat of a DenseNet block FP32; the result is still the file's."""

from __future__ import annotations

import numpy as np

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import QDQGraph, run_ort


def test_concat_of_a_float_pool_and_an_int8_conv_runs_int8():
    g = QDQGraph(shape=("N", 4, 8, 8))
    x = g.qdq("input", 0.03, 0, np.int8)
    c = g.qdq(g.conv(x, 4, 8, relu=True, output="c"), 0.0213, 0, np.uint8)
    # an average pool onto its own, finer grid: FP32 (INT8 pooling would round onto the input's grid)
    p = g.qdq(
        g.node("AveragePool", [c], "p", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), 0.01, 0, np.uint8
    )
    d = g.qdq(g.conv(p, 8, 8, relu=True, output="d"), 0.0191, 0, np.uint8)
    cat = g.qdq(g.node("Concat", [p, d], "cat", axis=1), 0.0233, 0, np.uint8)
    model = g.build([g.conv(cat, 16, 4, k=1, output="y")])
    result = convert(model)
    concat = next(n for n in result.model.graph if n.op_type == "Concat")
    assert concat.metadata_props.get("int8kit.precision") == "int8", "\n".join(result.summary.lines())
    xin = np.random.default_rng(2).standard_normal((4, 4, 8, 8)).astype(np.float32)
    got = Predictor(result.model, num_threads=1).run(xin)
    want = run_ort(model, xin, optimize=False)
    # exact but for the rare value oneDNN's reciprocal scale and onnxruntime's division round one step apart
    close = np.abs(got - want) <= 1e-4 * np.abs(want).max() + 1e-5
    assert close.mean() >= 0.97 and np.abs(got - want).max() <= 0.02 * np.abs(want).max()
