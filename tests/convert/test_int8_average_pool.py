"""An average pool whose output the QDQ file puts on its own grid (DenseNet's transitions, onnxruntime's
AveragePool QDQ) reads the INT8 tensor directly and rounds the average once onto the output's grid, as
the file does: no float copy of its input, no quantize/dequantize around it, and the values onnxruntime
computes on the QDQ model itself."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort

STEP_IN, STEP_OUT = 0.04, 0.0271  # the pool's output has its own, finer grid


def _model(zero_point: int = 0, **pool):
    g = QDQGraph(shape=("N", 3, 8, 8), seed=11)
    x = g.qdq("input", 0.02, 128)
    dtype = np.int8 if zero_point else np.uint8
    f = g.qdq(g.conv(x, 3, 16, relu=not zero_point), STEP_IN, zero_point, dtype=dtype)
    pooled = g.qdq(g.node("AveragePool", [f], name="pool", **pool), STEP_OUT, dtype=dtype)
    y = g.conv(pooled, 16, 8, k=1, pads=[0, 0, 0, 0])
    return g.build([g.qdq(y, 0.05, dtype=np.int8)])


POOLS = {
    "2x2 stride 2": {"kernel_shape": [2, 2], "strides": [2, 2]},
    "3x3 stride 1, padding counted": {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    "3x3 stride 1, padding excluded": {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
}


@pytest.mark.parametrize("pool", POOLS.values(), ids=POOLS.keys())
@pytest.mark.parametrize("zero_point", [0, 7])
def test_average_onto_its_own_grid_runs_int8_and_matches_the_file(pool, zero_point):
    qdq = _model(zero_point, **pool)
    model = convert(qdq).model
    node = next(n for n in model.graph if n.name == "pool")
    assert (node.domain, node.op_type) == ("int8kit", "AveragePool")
    assert node.attributes.get_int("y_type") is not None  # the output's quantize folded into the pool
    assert not [n.op_type for n in model.graph if n.op_type in ("QuantizeLinear", "DequantizeLinear")][1:-1]
    x = eval_inputs(n=16, size=8)
    got, want = run_int8kit(model, x), run_ort(qdq, x, optimize=False)
    # the same grid points, but for exact ties of the average (oneDNN multiplies by 1/scale, the spec divides)
    assert (np.abs(got - want) > 1e-5).mean() <= 0.01
    np.testing.assert_allclose(got, want, rtol=0, atol=0.4)  # a tie moves the 1x1 conv after it a few steps


def test_windows_a_convolution_cannot_average_run_in_float_and_stay_exact():
    """Excluded padding (divisor varies at the border) with a zero point: dequantize, float pool, quantize."""
    qdq = _model(7, **POOLS["3x3 stride 1, padding excluded"])
    p = Predictor(convert(qdq).model)
    x = eval_inputs(n=4, size=8)
    p.run(x)
    kinds = dict(p.kernels(x.shape))
    assert any("dequantized" in label for label in kinds)
    assert not any(impl.startswith("ref") for impl in kinds.values())
