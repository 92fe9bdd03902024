"""The ops ConvNeXt, vision transformers and the ONNX model zoo add to a CNN's, against onnxruntime: LRN,
LayerNormalization over one or more trailing dims, MatMul of two computed tensors (batched, broadcast,
through a Transpose), and the unary math of their normalisations and attention scaling (Sqrt, Exp, Log, Abs,
Pow)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _run_both(model, feeds):
    got = Predictor(model, num_threads=1).run_dict(feeds)["y"]
    assert_close(got, run_ort(model, feeds))
    return got


@pytest.mark.parametrize(("axis", "bias"), [(-1, True), (1, True), (2, False)], ids=["last", "from-axis-1", "no-bias"])
def test_layer_normalization_matches_onnxruntime(axis, bias):
    shape = (2, 5, 6, 4)
    norm_shape = shape[axis % 4 :]
    inputs = ["x", "scale", "b"] if bias else ["x", "scale"]
    nodes = [helper.make_node("LayerNormalization", inputs, ["y"], axis=axis, epsilon=1e-5)]
    inits = [init("scale", rand(*norm_shape, seed=1))] + ([init("b", rand(*norm_shape, seed=2))] if bias else [])
    model = make_model(nodes, [vinfo("x", ["N", *shape[1:]])], [vinfo("y", None)], inits)
    _run_both(model, {"x": rand(*shape, seed=3) * 3 + 1})


def test_layer_normalization_statistics_outputs_are_refused_naming_the_node():
    nodes = [helper.make_node("LayerNormalization", ["x", "scale"], ["y", "mean"], name="ln")]
    model = make_model(nodes, [vinfo("x", [2, 4])], [vinfo("y", None), vinfo("mean", None)], [init("scale", rand(4))])
    with pytest.raises(UnsupportedOpError, match="ln.*Mean"):
        Predictor(model, num_threads=1).run(rand(2, 4))


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((2, 3, 5, 4), (2, 3, 4, 6)), ((2, 3, 5, 4), (3, 4, 6)), ((2, 1, 5, 4), (1, 3, 4, 6)), ((5, 4), (2, 4, 6))],
    ids=["batched", "rank-broadcast", "dim-broadcast", "2d-by-3d"],
)
def test_matmul_of_two_computed_tensors_matches_onnxruntime(a_shape, b_shape):
    nodes = [helper.make_node("Relu", ["a"], ["ra"]), helper.make_node("MatMul", ["ra", "b"], ["y"])]
    model = make_model(nodes, [vinfo("a", list(a_shape)), vinfo("b", list(b_shape))], [vinfo("y", None)])
    _run_both(model, {"a": rand(*a_shape, seed=4), "b": rand(*b_shape, seed=5)})


def test_attention_scores_through_a_transpose_match_onnxruntime():
    """softmax(q k^T / sqrt(d)) v with k^T a Transpose: the engine may read it as a strided view."""
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Div", ["s", "root_d"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    shape = [2, 3, 7, 8]
    model = make_model(
        nodes,
        [vinfo(n, shape) for n in ("q", "k", "v")],
        [vinfo("y", None)],
        [init("root_d", np.array(np.sqrt(8.0), np.float32))],
    )
    _run_both(model, {n: rand(*shape, seed=i) for i, n in enumerate(("q", "k", "v"))})


@pytest.mark.parametrize("op", ["Sqrt", "Exp", "Log", "Abs"])
def test_unary_math_matches_onnxruntime(op):
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Add", ["a", "eps"], ["p"])]
    nodes.append(helper.make_node(op, ["p" if op in ("Sqrt", "Log") else "x"], ["y"]))
    model = make_model(nodes, [vinfo("x", [2, 3, 4])], [vinfo("y", None)], [init("eps", np.array(0.1, np.float32))])
    _run_both(model, {"x": rand(2, 3, 4, seed=6)})


@pytest.mark.parametrize("exponent", [2.0, 0.5, -1.0])
def test_pow_by_a_constant_matches_onnxruntime(exponent):
    nodes = [
        helper.make_node("Abs", ["x"], ["a"]),
        helper.make_node("Add", ["a", "eps"], ["p"]),
        helper.make_node("Pow", ["p", "e"], ["y"]),
    ]
    inits = [init("eps", np.array(0.1, np.float32)), init("e", np.array(exponent, np.float32))]
    model = make_model(nodes, [vinfo("x", [2, 3, 4])], [vinfo("y", None)], inits)
    _run_both(model, {"x": rand(2, 3, 4, seed=7)})


@pytest.mark.parametrize("size", [3, 5])
def test_lrn_after_a_conv_matches_onnxruntime(size):
    """LRN, as the ONNX model zoo's AlexNet, CaffeNet and GoogLeNet use it, reading a convolution's output."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("LRN", ["c"], ["y"], size=size, alpha=1e-3, beta=0.75, bias=2.0),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 3, 8, 8])], [vinfo("y", None)], [init("w", rand(16, 3, 3, 3, seed=8))])
    _run_both(model, {"x": rand(2, 3, 8, 8, seed=9)})
