"""Quantize/dequantize reorders with zero points, against onnxruntime.

oneDNN 3.2's jit reorder dropped the destination zero point of an f32 NCHW -> u8 NHWC quantization for
channel counts above 16 that are not a multiple of 4 (at 16x16 and larger images): every value of
onnxruntime's default asymmetric QDQ models came out off by the zero point there (TinyViT's windowed
attention, logits cosine 0.86 against the QDQ model). The engine keeps zero points to reorders that do not
change the layout.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, run_ort, vinfo


def _qdq_model(shape, zero_point):
    """relu(x) - x (computed at run time), then QuantizeLinear and DequantizeLinear with one scale and zero point."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Sub", ["r", "x"], ["n"]),
        helper.make_node("QuantizeLinear", ["n", "s", "zp"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"]),
    ]
    inits = [init("s", np.array(0.068, np.float32)), init("zp", zero_point)]
    return make_model(nodes, [vinfo("x", list(shape))], [vinfo("y", None)], inits)


@pytest.mark.parametrize("channels", [17, 21, 30, 42, 99])
@pytest.mark.parametrize("zero_point", [np.array(137, np.uint8), np.array(-20, np.int8)])
def test_quantize_with_a_zero_point_matches_onnxruntime(channels, zero_point):
    shape = (2, channels, 16, 16)
    model = _qdq_model(shape, zero_point)
    x = np.random.default_rng(channels).standard_normal(shape).astype(np.float32)
    got = Predictor(model, num_threads=1).run(x)
    want = run_ort(model, {"x": x})
    # at most one grid step where x/s rounds differently (x * (1/s) here), never the zero point's offset
    np.testing.assert_allclose(got, want, rtol=0, atol=0.069)
    assert np.mean(np.abs(got - want) > 1e-6) < 0.01


def test_a_six_dim_quantize_with_a_zero_point_matches_onnxruntime():
    """Plain data of a rank without known layout tags (Swin's window partition is 6-D) quantizes in one step."""
    shape = (2, 3, 4, 3, 4, 21)
    model = _qdq_model(shape, np.array(137, np.uint8))
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    got = Predictor(model, num_threads=1).run(x)
    np.testing.assert_allclose(got, run_ort(model, {"x": x}), rtol=0, atol=0.069)
