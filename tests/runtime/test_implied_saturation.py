"""A trailing ReLU / Clip the INT8 destination's saturation already applies is dropped, and only then.

Reference: ONNX QuantizeLinear, q = saturate(round_half_even(v / y_scale) + y_zero_point), applied to
the clipped value in numpy; a wrongly dropped clip shows up as codes beyond the clip's bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit import ops
from int8kit.ops import PostOp
from int8kit.runtime.lowering_compute import Quant, without_implied_saturation

from ._util import init, vinfo
from .test_int8_primitives import ELEM, ONNX_TYPE, RANGES, conv_acc, int8_model, quantize, run, scale_for, zp

W1 = np.ones(1, np.float32)


def quant(y_scale: float, y_type: int, y_zero_point: int = 0) -> Quant:
    return Quant(0.1, W1, y_scale, y_type, None, 0, 0 if y_type == ops.FLOAT else y_zero_point)


@pytest.mark.parametrize(
    ("chain", "q", "kept"),
    [
        (["relu"], quant(0.05, ops.UINT8), []),  # max(v, 0) is what u8 saturation does at 0
        (["sum", "relu"], quant(0.05, ops.UINT8), ["sum"]),  # the ResNet block tail
        (["relu"], quant(0.05, ops.UINT8, 10), ["relu"]),  # zero point 10: v < 0 writes codes 0..9
        (["relu"], quant(0.05, ops.INT8), ["relu"]),  # s8 keeps negatives
        (["relu"], quant(0.05, ops.FLOAT), ["relu"]),  # a float dst does not saturate
        (["relu"], None, ["relu"]),  # FP32 conv
        (["clip:0.0:6.0"], quant(6.0 / 255, ops.UINT8), []),  # ReLU6 calibrated at 6
        (["clip:0.0:6.0"], quant(5.0 / 255, ops.UINT8), []),  # ...or below: 6 is beyond code 255
        (["clip:0.0:6.0"], quant(8.0 / 255, ops.UINT8), ["clip:0.0:6.0"]),  # 6 is code 191
        (["clip:-1.0:1.0"], quant(1.0 / 127, ops.INT8), ["clip:-1.0:1.0"]),  # -1 is code -127, not -128
        (["clip:-1.0:1.0"], quant(1.0 / 128, ops.INT8), []),
        (["leakyrelu:0.1"], quant(0.05, ops.UINT8), ["leakyrelu:0.1"]),  # not a clip
        (["relu", "swish"], quant(0.05, ops.UINT8), ["relu", "swish"]),  # only a trailing clip
        (["fq:0.1:0.0:0.0:255.0", "relu"], quant(0.05, ops.UINT8), ["fq:0.1:0.0:0.0:255.0"]),
    ],
)
def test_only_a_clip_the_destination_implies_is_dropped(chain, q, kept):
    got = without_implied_saturation([PostOp.decode(t) for t in chain], q)
    assert got == [PostOp.decode(t) for t in kept]


@pytest.mark.parametrize(
    ("y_type", "y_range", "y_zero_point"),
    [
        (np.uint8, 6.0, 0),  # dropped: exact
        (np.uint8, 8.0, 0),  # kept: codes stop at 191
        (np.uint8, 6.0, 20),  # kept: codes below 20 are cut by the ReLU
        (np.int8, 6.0, 0),  # kept: s8 holds negatives
    ],
)
def test_int8_conv_with_relu6_matches_numpy(y_type, y_range, y_zero_point):
    rng = np.random.default_rng(3)
    c, oc = 16, 24
    x = np.abs(rng.standard_normal((2, c, 9, 9))).astype(np.float32)
    x_scale = scale_for(x, np.uint8)
    w = rng.integers(-127, 128, (oc, c, 3, 3)).astype(np.int8)
    w_scales = (rng.uniform(0.5, 2.0, oc) * 6e-3).astype(np.float32)
    bias = rng.standard_normal(oc).astype(np.float32)
    qx = quantize(x, x_scale, np.uint8)
    real = x_scale * w_scales.astype(np.float64)[None, :, None, None] * conv_acc(qx, w, 1, 1, 1)
    real += bias[None, :, None, None]
    assert (real < 0).mean() > 0.2 and (real > 6).mean() > 0.05, "both clip bounds must be exercised"
    lo, hi = RANGES[y_type]
    y_scale = y_range / (hi - y_zero_point)
    want = np.clip(np.rint(np.clip(real, 0, 6) / y_scale) + y_zero_point, lo, hi).astype(y_type)

    conv = helper.make_node(
        "Conv",
        ["qx", "w", "b"],
        ["qy"],
        domain=ops.DOMAIN,
        pads=[1, 1, 1, 1],
        post_ops=["clip:0.0:6.0"],
        x_scale=x_scale,
        w_scales=w_scales.tolist(),
        y_scale=y_scale,
        y_type=ONNX_TYPE[y_type],
        y_zero_point=y_zero_point,
    )
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]), conv]
    inits = [init("xs", np.float32(x_scale)), zp("xz", np.uint8), init("w", w), init("b", bias)]
    model = int8_model(nodes, [vinfo("x", list(x.shape))], [vinfo("qy", None, ELEM[y_type])], inits)
    got = run(model, {"x": x})["qy"]
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99, (diff.max(), (diff == 0).mean())
    # The bounds themselves are exact: no code outside what the clip allows, and both ends reached.
    codes_lo, codes_hi = (np.clip(np.rint(np.array([0.0, 6.0]) / y_scale) + y_zero_point, lo, hi)).astype(int)
    assert got.min() == codes_lo and got.max() == codes_hi, (got.min(), got.max(), codes_lo, codes_hi)
