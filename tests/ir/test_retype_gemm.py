"""Gemm / MatMul with constant weights -> int8kit.Dense with W stored [M, K]."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.ir.retype_gemm import GemmToDensePass

from .fusion_util import assert_equivalent, build, kinds, nodes, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
X = {"x": randn(3, 8, seed=31)}


def _run(proto):
    model = prepare(proto)
    p = GemmToDensePass()
    modified = p(model).modified
    return model, p.report, modified


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 2.0)])
def test_gemm_becomes_dense(trans_b, alpha, beta):
    text = f"""{HEAD}
    g (float[N,8] x) => (float[N,5] y) {{
      y = Gemm <transB={trans_b}, alpha={alpha}, beta={beta}> (x, w, b)
    }}"""
    w = randn(5, 8) if trans_b else randn(8, 5)
    weights = {"w": w, "b": randn(1, 5, seed=1)}
    proto = build(text, weights)
    model, report, modified = _run(proto)
    assert modified and kinds(model) == ["int8kit.Dense"]
    dense = nodes(model)["y"]
    w_mk = w if trans_b else w.T
    np.testing.assert_allclose(dense.inputs[1].const_value.numpy(), alpha * w_mk, rtol=1e-6)
    np.testing.assert_allclose(dense.inputs[2].const_value.numpy(), beta * weights["b"][0], rtol=1e-6)
    assert set(model.graph.initializers) == {dense.inputs[1].name, dense.inputs[2].name}
    assert_equivalent(proto, model, X)


@pytest.mark.parametrize(
    ("x_type", "y_type", "x", "axis"),
    [
        ("float[N,8]", "float[N,5]", randn(3, 8, seed=31), None),
        # MatMul broadcasts W over the leading axes: Dense(axis=2) reads [N*T, K] rows, bias along the last axis
        ("float[N,4,8]", "float[N,4,5]", randn(3, 4, 8, seed=5), 2),
    ],
)
def test_matmul_with_bias_add_becomes_dense_with_b(x_type, y_type, x, axis):
    text = f"""{HEAD}
    g ({x_type} x) => ({y_type} y) {{
      m = MatMul (x, w)
      y = Add (m, b)
    }}"""
    proto = build(text, {"w": randn(8, 5), "b": randn(5, seed=2)})
    model, report, modified = _run(proto)
    assert modified and kinds(model) == ["int8kit.Dense"]
    dense = nodes(model)["m"]
    assert dense.outputs[0].name == "y" and dense.inputs[1].const_value.numpy().shape == (5, 8)
    assert dense.attributes.get_int("axis", None) == axis and dense.inputs[2] is not None
    assert_equivalent(proto, model, {"x": x})


REFUSED = [
    ("y = Gemm <transA=1> (t, w)", "float[8,N] t", {"w": randn(8, 5)}, "transA"),
    ("y = Gemm (x, v)", "float[N,8] x, float[8,5] v", {}, "not a constant"),
    ("y = MatMul (x, v)", "float[N,8] x, float[8,5] v", {}, "not a constant"),
    ("y = Gemm (x, w, c)", "float[N,8] x", {"w": randn(8, 5), "c": randn(3, 5)}, "per-output-channel"),
]


@pytest.mark.parametrize(("line", "inputs", "weights", "reason"), REFUSED, ids=[r[3] for r in REFUSED])
def test_refusals_say_why(line, inputs, weights, reason):
    out = "float[N,5] y"
    text = f"""{HEAD}
    g ({inputs}) => ({out}) {{
      {line}
    }}"""
    model, report, modified = _run(build(text, weights))
    assert not modified and not any(n.domain for n in model.graph)
    assert reason in report.reasons("y")[0]
