"""A standalone Pad (one that does not fold into a Conv) against onnxruntime: constant, reflect, edge, wrap.

TensorFlow-style "SAME" max pooling and some Paddle exports pad explicitly in front of a pool; the engine
crops negative amounts and concatenates constant borders, for any axes, value and opset spelling.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo


def _pad_model(pads, value=None, axes=None, mode="constant", opset=18):
    inputs = ["x", "pads"] + (["value"] if value is not None or axes is not None else [])
    inits = [init("pads", np.array(pads, np.int64))]
    if value is not None or axes is not None:
        inits.append(init("value", np.array(value or 0.0, np.float32)))
    if axes is not None:
        inputs.append("axes")
        inits.append(init("axes", np.array(axes, np.int64)))
    nodes = [
        helper.make_node("Pad", inputs, ["p"], mode=mode, name="pad"),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2], name="pool"),
    ]
    return make_model(nodes, [vinfo("x", ["N", 5, 9, 11])], [vinfo("y", None)], inits, opset=opset)


CASES = {
    "spatial asymmetric zeros": ([0, 0, 0, 1, 0, 0, 1, 2], None, None),
    "value and channel axis": ([0, 1, 2, 0, 0, 2, 1, 3], -1.5, None),
    "negative crops": ([0, 0, -1, 2, 0, 0, 1, -2], 0.25, None),
    "axes input": ([1, 2, 2, 0], 3.0, [2, 3]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("batch", [1, 3])
def test_pad_matches_onnxruntime(case, batch):
    pads, value, axes = CASES[case]
    model = _pad_model(pads, value, axes)
    x = np.random.default_rng(batch).standard_normal((batch, 5, 9, 11)).astype(np.float32)
    assert_close(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}))


def test_opset_2_attribute_spelling():
    nodes = [
        helper.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 2, 0], value=0.5, name="pad"),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 5, 9, 11])], [vinfo("y", None)], opset=10)
    x = np.random.default_rng(0).standard_normal((2, 5, 9, 11)).astype(np.float32)
    assert_close(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}))


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[0, 0, 1, 1, 0, 0, 1, 1], [0, 0, 2, 0, 0, 0, 1, 3], [0, 1, 1, 0, 0, 2, 0, 1]])
def test_pad_from_the_data_matches_onnxruntime(mode, pads):
    """TResNet's blur pool pads by reflection; edge and wrap fill from the data too (corners included)."""
    model = _pad_model(pads, mode=mode, opset=19)
    x = np.random.default_rng(4).standard_normal((2, 5, 9, 11)).astype(np.float32)
    predictor = Predictor(model, num_threads=1)
    np.testing.assert_array_equal(predictor.run(x), run_ort(model, {"x": x}))
    impls = predictor.program({"x": x.shape}).impls
    assert not [i for i in impls if i.startswith("ref")], impls


def test_a_reflection_wider_than_the_axis_is_refused_naming_the_node():
    model = _pad_model([0, 0, 9, 0, 0, 0, 0, 0], mode="reflect")
    with pytest.raises(UnsupportedOpError, match="'pad'.*reflect"):
        Predictor(model, num_threads=1).run(np.zeros((1, 5, 9, 11), np.float32))


def test_zero_pads_computed_from_the_shape_fold_into_the_conv_when_compiled():
    """timm's TF-style "same" padding computes the pads from the input's shape (Shape -> Slice -> arithmetic
    -> Concat -> Pad -> Conv): only compiling knows them, and the conv then pads itself (no copy)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["shape"]),
        helper.make_node("Slice", ["shape", "two", "four"], ["hw"]),
        helper.make_node("Mod", ["hw", "two1"], ["odd"]),  # pad 1 on odd sizes, 0 on even: ends differ
        helper.make_node("Concat", ["zeros2", "ones2", "zeros2", "odd"], ["pads"], axis=0),
        helper.make_node("Pad", ["r", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["y"], strides=[2, 2], name="conv"),
    ]
    inits = [
        init("two", np.array([2], np.int64)),
        init("four", np.array([4], np.int64)),
        init("two1", np.array([2], np.int64)),
        init("zeros2", np.array([0, 0], np.int64)),
        init("ones2", np.array([1, 1], np.int64)),
        init("w", np.random.default_rng(1).standard_normal((4, 5, 3, 3)).astype(np.float32)),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 5, 9, 10])], [vinfo("y", None)], inits)
    x = np.random.default_rng(2).standard_normal((2, 5, 9, 10)).astype(np.float32)
    predictor = Predictor(model, num_threads=1)
    assert_close(predictor.run(x), run_ort(model, {"x": x}))
    labels = predictor.program({"x": x.shape}).labels
    assert not [label for label in labels if label.startswith("pad")], labels
