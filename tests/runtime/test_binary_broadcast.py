"""Element-wise ops whose broadcast oneDNN 3.2 runs only on ref:any in the given rank (SKNet's and ResNeSt's
attention: [N, 2, C, H, W] * [N, 2, C, 1, 1]) run on the same op over merged dims, matching onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, run_ort, vinfo


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "op"),
    [
        ((2, 2, 8, 5, 6), (2, 2, 8, 1, 1), "Mul"),  # radix attention over computed weights
        ((2, 3, 4, 5, 6), (1, 3, 4, 1, 1), "Add"),  # a constant per (radix, channel)
        ((2, 2, 8, 5, 6), (2, 2, 8, 5, 6), "Sub"),  # nothing broadcast
    ],
)
def test_five_d_binary_matches_onnxruntime_on_an_optimised_kernel(a_shape, b_shape, op):
    constant = b_shape[0] == 1
    nodes = [helper.make_node("Relu", ["x"], ["r"])]
    inputs, inits = [vinfo("x", list(a_shape))], []
    if constant:
        inits.append(init("w", np.random.default_rng(2).standard_normal(b_shape).astype(np.float32)))
    else:
        inputs.append(vinfo("w_in", list(b_shape)))
        nodes.append(helper.make_node("Sigmoid", ["w_in"], ["w"]))
    nodes.append(helper.make_node(op, ["r", "w"], ["y"]))
    model = make_model(nodes, inputs, [vinfo("y", None)], inits)
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal(a_shape).astype(np.float32)}
    if not constant:
        feeds["w_in"] = rng.standard_normal(b_shape).astype(np.float32)
    predictor = Predictor(model, num_threads=2)
    np.testing.assert_allclose(predictor.run_dict(feeds)["y"], run_ort(model, feeds), rtol=1e-6, atol=1e-6)
    impls = predictor.program({k: v.shape for k, v in feeds.items()}).impls
    assert not [i for i in impls if i.startswith("ref")], impls


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "op", "constant_b"),
    [
        ((2, 8, 1, 1), (2, 1, 5, 6), "Mul", False),  # FocalNet: global context x spatial gate
        ((2, 1, 5, 6), (2, 8, 1, 1), "Sub", False),  # not commutative: the order is kept
        ((2, 8, 1, 1), (1, 1, 5, 6), "Add", True),  # a constant spatial map
    ],
)
def test_both_inputs_broadcast(a_shape, b_shape, op, constant_b):
    """[N, C, 1, 1] op [N, 1, H, W]: oneDNN broadcasts only its second source, so one is written out first."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Relu", ["x"], ["a"])]
    inputs, inits = [vinfo("x", list(a_shape))], []
    if constant_b:
        inits.append(init("b", rng.standard_normal(b_shape).astype(np.float32)))
    else:
        inputs.append(vinfo("z", list(b_shape)))
        nodes.append(helper.make_node("Sigmoid", ["z"], ["b"]))
    nodes.append(helper.make_node(op, ["a", "b"], ["y"]))
    model = make_model(nodes, inputs, [vinfo("y", None)], inits)
    feeds = {"x": rng.standard_normal(a_shape).astype(np.float32)}
    if not constant_b:
        feeds["z"] = rng.standard_normal(b_shape).astype(np.float32)
    predictor = Predictor(model, num_threads=2)
    np.testing.assert_allclose(predictor.run_dict(feeds)["y"], run_ort(model, feeds), rtol=1e-6, atol=1e-6)
    impls = predictor.program({k: v.shape for k, v in feeds.items()}).impls
    assert not [i for i in impls if i.startswith("ref")], impls
