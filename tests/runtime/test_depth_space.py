"""DepthToSpace (torch's PixelShuffle; DCR and CRD) and SpaceToDepth (TResNet's stem, tf2onnx) against
onnxruntime, at several batch sizes, on plain input and on a conv's (channels-last or blocked) output."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo


def _model(op: str, channels: int, size: int, block: int, after_conv: bool, **attrs):
    nodes, inits, x = [], [], "x"
    if after_conv:
        w = np.random.default_rng(1).standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.3
        nodes.append(helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]))
        inits.append(init("w", w))
        x = "c"
    nodes.append(helper.make_node(op, [x], ["y"], blocksize=block, **attrs))
    cin = 3 if after_conv else channels
    return make_model(nodes, [vinfo("x", ["N", cin, size, size])], [vinfo("y", None)], inits)


@pytest.mark.parametrize("after_conv", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    ("op", "channels", "size", "block", "attrs"),
    [
        ("DepthToSpace", 16, 5, 2, {"mode": "DCR"}),
        ("DepthToSpace", 16, 5, 2, {"mode": "CRD"}),
        ("DepthToSpace", 18, 4, 3, {}),  # mode defaults to DCR
        ("SpaceToDepth", 4, 8, 2, {}),
        ("SpaceToDepth", 3, 12, 4, {}),
    ],
)
def test_matches_onnxruntime(op, channels, size, block, attrs, batch, after_conv):
    model = _model(op, channels, size, block, after_conv, **attrs)
    cin = 3 if after_conv else channels
    x = np.random.default_rng(batch).standard_normal((batch, cin, size, size)).astype(np.float32)
    got = Predictor(model, num_threads=2).run(x)
    want = run_ort(model, {"x": x})
    assert got.shape == want.shape
    assert_close(got, want, rtol=1e-6)


def test_space_to_depth_of_a_size_the_block_does_not_divide_names_the_node():
    model = _model("SpaceToDepth", 4, 6, 4, after_conv=False)
    with pytest.raises(UnsupportedOpError, match="SpaceToDepth"):
        Predictor(model, num_threads=1).run(np.zeros((1, 4, 6, 6), np.float32))
