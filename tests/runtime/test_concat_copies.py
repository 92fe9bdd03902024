"""A channel Concat of narrow channels-last inputs runs as one reorder per input into its window of the
output (oneDNN 3.2's concat copies such inputs pixel by pixel), for float and INT8 data, and computes
what onnxruntime does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert._util import QDQGraph, eval_inputs  # noqa: E402


def _copies(predictor: Predictor, shape) -> list[str]:
    return [label for label, _ in predictor.kernels(shape) if "(input at channel" in label]


@pytest.mark.parametrize(("channels", "copies"), [((8, 4), True), ((24, 8), False)], ids=["narrow", "wide"])
def test_float_channels_last_concat(channels, copies):
    rng = np.random.default_rng(0)
    a, c = channels
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["pa"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb"], ["pb"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["pa", "pb"], ["y"], axis=1),
    ]
    inits = [
        init("wa", rng.standard_normal((a, 3, 3, 3)).astype(np.float32)),
        init("wb", rng.standard_normal((c, 3, 3, 3)).astype(np.float32)),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 3, 12, 12])], [vinfo("y", None)], inits)
    p = Predictor(model, num_threads=1, layout_policy="channels_last")
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    assert_close(p.run(x), run_ort(model, {"x": x}))
    assert bool(_copies(p, x.shape)) == copies


def test_int8_concat_of_narrow_channels_is_copies_and_matches_the_file():
    from int8kit.convert.pipeline import convert

    g = QDQGraph(shape=("N", 3, 12, 12), seed=4)
    x = g.qdq("input", 0.02, 128)
    a = g.qdq(g.conv(x, 3, 8, relu=True), 0.03)
    b = g.qdq(g.conv(a, 8, 8, k=3, relu=True, group=8), 0.03)  # GhostNet's cheap depthwise half
    qdq = g.build([g.node("Concat", [a, b], axis=1)])
    p = Predictor(convert(qdq).model, num_threads=1)
    x = eval_inputs(n=4, size=12)
    assert _copies(p, x.shape)
    diff = np.abs(p.run(x) - run_ort(qdq, {"input": x}))  # the file's exact semantics
    # exact but for rare float-order flips of one grid step (0.03) in the convolutions' rounding
    assert diff.max() <= 0.03 + 1e-6 and (diff > 1e-6).mean() <= 0.005
