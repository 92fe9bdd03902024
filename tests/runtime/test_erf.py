"""A standalone Erf (what is left of a GELU whose inside a QDQ file rounds) computes erf: math.erf is the
reference, over the whole float range, zero, tiny and huge values and infinities, in any layout."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

import int8kit


def _erf_model(shape, alone: bool = False):
    """Erf(x), or Erf(x) + Relu(x) so the Erf's output is an intermediate tensor in the chosen layout."""
    nodes = [helper.make_node("Erf", ["x"], ["y" if alone else "e"], name="erf")]
    if not alone:
        nodes += [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["e", "r"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "erf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_erf_matches_math_erf_everywhere():
    special = [0.0, 1e-6, -1e-6, 1e-20, -1e-38, 4.0, -4.0, 30.0, -1e4, 3e38, -3e38, np.inf, -np.inf]
    x = np.concatenate([np.linspace(-8, 8, 4001), special]).astype(np.float32)
    got = int8kit.Predictor(_erf_model([1, x.size], alone=True)).run(x[None])[0]
    want = np.array([math.erf(float(v)) for v in x])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # huge and infinite x included: exactly +-1
    assert got[x.size - len(special)] == 0.0  # erf(0) is exactly 0


def test_erf_of_image_shaped_data_runs_optimised_kernels():
    x = np.random.default_rng(0).standard_normal((2, 24, 7, 7)).astype(np.float32) * 3
    p = int8kit.Predictor(_erf_model(list(x.shape)))
    got = p.run(x)
    want = np.vectorize(math.erf)(x.astype(np.float64)) + np.maximum(x, 0)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    assert not [k for k in p.kernels(x.shape) if k[1].startswith("ref")]
