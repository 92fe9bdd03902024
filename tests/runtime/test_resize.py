"""Resize on oneDNN's resampling against onnxruntime: the modes exporters write for classifiers (torch's
F.interpolate nearest/bilinear, TF's half-pixel nearest) match on optimised kernels; a mode whose source
pixels oneDNN would pick differently (align_corners, cubic, antialias) runs as per-axis interpolation
matrices taken from onnx's reference Resize, never approximated."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, run_ort, vinfo

NEAREST_FLOOR = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")  # torch


def _model(x_shape, attrs, scales=None, sizes=None, with_relu=True):
    inputs = ["r" if with_relu else "x", "", "scales" if scales is not None else ""]
    inits = [] if scales is None else [init("scales", np.asarray(scales, np.float32))]
    if sizes is not None:
        inputs.append("sizes")
        inits.append(init("sizes", np.asarray(sizes, np.int64)))
    nodes = [helper.make_node("Resize", inputs, ["y"], name="up", **attrs)]
    if with_relu:  # a computed input, as in a network
        nodes.insert(0, helper.make_node("Relu", ["x"], ["r"]))
    return make_model(nodes, [vinfo("x", ["N", *x_shape[1:]])], [vinfo("y", None)], inits)


CASES = [
    ((2, 8, 5, 6), NEAREST_FLOOR, [1, 1, 2, 2], None),
    ((2, 8, 5, 6), dict(mode="nearest"), [1, 1, 2, 2], None),  # ONNX defaults: half_pixel, round_prefer_floor
    ((2, 8, 5, 6), dict(mode="nearest", coordinate_transformation_mode="pytorch_half_pixel"), [1, 1, 3, 3], None),
    ((2, 8, 5, 6), dict(mode="nearest", nearest_mode="round_prefer_ceil"), [1, 1, 2, 3], None),
    ((2, 8, 7, 7), NEAREST_FLOOR, None, [2, 8, 14, 21]),
    ((2, 16, 6, 6), dict(mode="linear"), [1, 1, 2, 2], None),
    ((2, 16, 6, 6), dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), None, [2, 16, 12, 12]),
    ((2, 16, 5, 5), dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), None, [2, 16, 7, 9]),
    ((2, 16, 8, 8), dict(mode="linear"), [1, 1, 0.5, 0.5], None),  # downsampling by 2: averages of pairs
    ((2, 4, 9), dict(mode="linear"), [1, 1, 2], None),  # one spatial axis
]


@pytest.mark.parametrize(("shape", "attrs", "scales", "sizes"), CASES)
def test_resize_matches_onnxruntime_on_an_optimised_kernel(shape, attrs, scales, sizes):
    model = _model(shape, attrs, scales, sizes)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    predictor = Predictor(model, num_threads=2)
    got = predictor.run(x)
    want = run_ort(model, {"x": x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    impls = predictor.program({"x": shape}).impls
    assert not [i for i in impls if i.startswith("ref")], impls


def test_sizes_computed_from_another_tensor_shape_fold_at_compile_time():
    """HRNet-style: F.interpolate(lo, size=hi.shape[-2:]) exports Shape -> Slice -> Concat -> Resize sizes."""
    inits = [
        init("start", np.array([2], np.int64)),
        init("end", np.array([4], np.int64)),
        init("nc", np.array([2, 8], np.int64)),
        init("w", np.random.default_rng(0).standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["lo"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "start", "end"], ["hw"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["lo", "", "", "sizes"], ["up"], mode="linear"),
        helper.make_node("Add", ["x", "up"], ["y"]),
    ]
    model = make_model(nodes, [vinfo("x", [2, 8, 10, 10])], [vinfo("y", None)], inits)
    x = np.random.default_rng(4).standard_normal((2, 8, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}), rtol=1e-4, atol=1e-5)


TORCH_BICUBIC = dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel", cubic_coeff_a=-0.75)
MATRIX_CASES = [  # oneDNN's resampling picks other pixels or has no such mode: per-axis matrices
    ((2, 8, 5, 6), dict(mode="linear", coordinate_transformation_mode="align_corners"), None, [2, 8, 10, 12]),
    ((2, 8, 5, 6), dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="ceil"), [1, 1, 2, 2],
     None),
    ((2, 8, 5, 6), NEAREST_FLOOR, [1, 1, 0.5, 0.5], None),  # oneDNN's coordinate is a tie there
    ((2, 8, 5, 6), dict(mode="cubic"), [1, 1, 2, 2], None),  # ONNX defaults: half_pixel, a = -0.75
    ((2, 8, 7, 7), TORCH_BICUBIC, None, [2, 8, 12, 16]),  # torch's bicubic F.interpolate / CrossViT's input
    ((2, 8, 7, 7), dict(TORCH_BICUBIC, coordinate_transformation_mode="align_corners"), None, [2, 8, 9, 11]),
    ((2, 8, 6, 6), dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1), [1, 1, 1.5, 1.5], None),  # TF
    ((2, 8, 5, 9), dict(mode="linear", coordinate_transformation_mode="align_corners"), None, [2, 8, 5, 4]),
    ((2, 8, 12), dict(mode="linear", coordinate_transformation_mode="align_corners"), None, [2, 8, 20]),  # 1-D
]  # fmt: skip


@pytest.mark.parametrize(("x_shape", "attrs", "scales", "sizes"), MATRIX_CASES)
def test_a_resize_onednn_would_compute_differently_runs_as_interpolation_matrices(x_shape, attrs, scales, sizes):
    model = _model(x_shape, attrs, scales, sizes)
    x = np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)
    predictor = Predictor(model, num_threads=1)
    np.testing.assert_allclose(predictor.run(x), run_ort(model, {"x": x}), rtol=1e-5, atol=1e-5)
    assert not [k for k in predictor.kernels(x.shape) if k[1].startswith("ref")]


def test_an_antialiased_downsampling_matches_onnxruntime():
    """Opset 18's antialias=1 (torch's antialias=True): a wider filter per axis, still one matrix each."""
    model = _model((2, 8, 12, 12), dict(mode="linear", antialias=1), [1, 1, 0.5, 0.375], None)
    model.opset_import[0].version = 18
    x = np.random.default_rng(3).standard_normal((2, 8, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(Predictor(model, num_threads=1).run(x), run_ort(model, {"x": x}), rtol=1e-5, atol=1e-5)


def test_a_resize_of_the_channel_axis_is_refused_naming_the_node():
    model = _model((2, 8, 5, 6), NEAREST_FLOOR, [1, 2, 2, 2])
    with pytest.raises(UnsupportedOpError, match="'up'.*spatial axes"):
        Predictor(model, num_threads=1).run(np.zeros((2, 8, 5, 6), np.float32))


def test_an_int8_qdq_resize_runs_float_between_the_file_s_grids():
    """onnxruntime's QDQ files put Q/DQ around Resize: the engine dequantizes, resizes in float, quantizes."""
    from int8kit.convert.pipeline import convert

    scale = np.float32(0.02)
    inits = [init("s", scale), init("z", np.uint8(0)), init("scales", np.array([1, 1, 2, 2], np.float32))]
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["rd"]),
        helper.make_node("Resize", ["rd", "", "scales"], ["up"], name="up", **NEAREST_FLOOR),
        helper.make_node("QuantizeLinear", ["up", "s", "z"], ["uq"]),
        helper.make_node("DequantizeLinear", ["uq", "s", "z"], ["y"]),
    ]
    model = make_model(nodes, [vinfo("x", [2, 4, 5, 5])], [vinfo("y", None, TensorProto.FLOAT)], inits)
    x = np.random.default_rng(5).standard_normal((2, 4, 5, 5)).astype(np.float32)
    got = Predictor(convert(model).model, num_threads=1).run(x)
    np.testing.assert_allclose(got, run_ort(model, {"x": x}), rtol=0, atol=1e-6)
