"""Expand of data computed at run time (timm's ECA `gate.expand_as(x)`, MobileViTv2's attention) against
onnxruntime, on optimised kernels; shapes that do not broadcast are refused naming the node."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, run_ort, vinfo


def _gated(gate_shape_of: str, extra=()):
    """x -> pooled sigmoid gate -> Expand(gate, Shape(x)) -> Relu -> Mul(x, ...): the Relu between keeps the
    Expand (drop_broadcast_expand removes one that the Mul reads directly)."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Sigmoid", ["pooled"], ["gate"]),
        helper.make_node("Shape", [gate_shape_of], ["shape"]),
        helper.make_node("Expand", ["gate", "shape"], ["expanded"], name="expand"),
        helper.make_node("Relu", ["expanded"], ["kept"]),
        helper.make_node("Mul", ["x", "kept"], ["y"]),
    ]
    return make_model(nodes, [vinfo("x", ["N", 6, 5, 7])], [vinfo("y", None)], list(extra))


@pytest.mark.parametrize("batch", [1, 3])
def test_expand_of_a_gate_to_the_input_shape_matches_onnxruntime(batch):
    model = _gated("x")
    x = np.random.default_rng(0).standard_normal((batch, 6, 5, 7)).astype(np.float32)
    predictor = Predictor(model, num_threads=2)
    assert "Expand" in [n.op_type for n in predictor.model.graph]
    np.testing.assert_allclose(predictor.run(x), run_ort(model, {"x": x}), rtol=1e-6, atol=1e-6)
    impls = predictor.program({"x": x.shape}).impls
    assert not [i for i in impls if i.startswith("ref")], impls


def test_expand_to_a_higher_rank_constant_shape_matches_onnxruntime():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Expand", ["r", "shape"], ["y"], name="expand"),
    ]
    model = make_model(nodes, [vinfo("x", [3, 1, 4])], [vinfo("y", None)], [init("shape", np.array([2, 3, 5, 4]))])
    x = np.random.default_rng(1).standard_normal((3, 1, 4)).astype(np.float32)
    np.testing.assert_array_equal(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}))


def test_a_shape_that_does_not_broadcast_is_refused_naming_the_node():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Expand", ["r", "shape"], ["y"], name="expand")]
    model = make_model(nodes, [vinfo("x", [3, 2])], [vinfo("y", None)], [init("shape", np.array([4, 5]))])
    with pytest.raises(UnsupportedOpError, match="'expand'.*do not broadcast"):
        Predictor(model, num_threads=1).run(np.zeros((3, 2), np.float32))


@pytest.mark.parametrize(
    ("shape", "repeats"),
    [((1, 4, 3, 3), (2, 1, 1, 1)), ((2, 3, 4), (1, 2, 3)), ((2, 5), (3, 1)), ((1, 4, 3, 3), (1, 1, 1, 1))],
)
def test_tile_of_run_time_data_matches_onnxruntime(shape, repeats):
    """XCiT's positional encoding: a conv output tiled per image (np.tile semantics, as ONNX's Tile)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Tile", ["r", "reps"], ["y"], name="tile")]
    model = make_model(
        nodes, [vinfo("x", list(shape))], [vinfo("y", None)], [init("reps", np.array(repeats, np.int64))]
    )
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    predictor = Predictor(model, num_threads=1)
    got = predictor.run(x)
    np.testing.assert_array_equal(got, run_ort(model, {"x": x}))
    np.testing.assert_array_equal(got, np.tile(np.maximum(x, 0), repeats))
    assert not [i for i in predictor.program({"x": shape}).impls if i.startswith("ref")]


def test_tile_of_shapes_folds_on_the_host():
    """Tile of shape arithmetic (repeats and data known when compiling) is evaluated there, not lowered."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Tile", ["s", "two"], ["ss"]),
        helper.make_node("Slice", ["ss", "start", "end"], ["hw"]),
        helper.make_node("Reshape", ["x", "hw"], ["y"]),
    ]
    inits = [init(name, np.array([v], np.int64)) for name, v in (("two", 2), ("start", 2), ("end", 4))]
    model = make_model(nodes, [vinfo("x", [6, 4])], [vinfo("y", None)], inits)
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.testing.assert_array_equal(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}))
