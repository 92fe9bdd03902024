"""A Gemm with alpha != 1 on int8 weights (a QDQ file's classifier head) runs INT8: alpha scales the weights'
grid, the int8 values stay the file's. It used to stay a Gemm, which the engine then refused."""

from __future__ import annotations

import numpy as np

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort


def test_gemm_alpha_beta_on_int8_weights_runs_int8_and_matches_the_file():
    g = QDQGraph(shape=("N", 3, 2, 2), seed=7)
    x = g.qdq("input", 0.02, 128)
    flat = g.qdq(g.node("Flatten", [g.qdq(g.conv(x, 3, 16, relu=True), 0.04)]), 0.04)
    w, _, _ = g.weight(g.rng.standard_normal((10, 64)).astype(np.float32) * 0.3)
    bias = g.const("fc_bias", g.rng.standard_normal(10).astype(np.float32))
    y = g.node("Gemm", [flat, w, bias], alpha=0.5, beta=2.0, transB=1)
    qdq = g.build([y])
    int8 = convert(qdq).model
    dense = [n for n in int8.graph if n.op_type == "Dense"]
    assert len(dense) == 1 and "x_scale" in dense[0].attributes  # an INT8 inner product
    assert not [n for n in int8.graph if n.op_type == "Gemm"]
    x = eval_inputs(n=16, size=2)
    np.testing.assert_allclose(run_int8kit(int8, x), run_ort(qdq, x, optimize=False), rtol=1e-4, atol=1e-4)
