"""A tensor that only moving ops made (a Slice of a shuffled Concat) but that the QDQ file quantizes with a
scale of its own is requantized onto that grid, as the file rounds and saturates it; the converter used to
pass the input's encoding through and compute something the file does not say.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort

C = 16


def _sliced_net(reader: str, own: float) -> onnx.ModelProto:
    """conv -> ReLU -> Q/DQ(s) -> channel shuffle -> Slice (half the channels) -> Q/DQ(own * s) -> reader."""
    g = QDQGraph(shape=("N", 3, 8, 8), seed=3)
    x = g.qdq("input", 0.02, 128)
    r = g.qdq(g.conv(x, 3, C, relu=True), 0.05)
    s5 = g.node("Reshape", [r, g.const("split", np.array([0, 2, C // 2, 8, 8], np.int64))])
    t5 = g.node("Transpose", [s5], perm=[0, 2, 1, 3, 4])
    shuffled = g.node("Reshape", [t5, g.const("merge", np.array([0, C, 8, 8], np.int64))])
    half = g.node(
        "Slice",
        [
            shuffled,
            g.const("starts", np.array([0], np.int64)),
            g.const("ends", np.array([C // 2], np.int64)),
            g.const("axes", np.array([1], np.int64)),
        ],
    )
    moved = g.qdq(half, 0.05 * own)
    if reader == "conv":
        y = g.conv(moved, C // 2, 4, k=1, pads=[0, 0, 0, 0])
    elif reader == "concat":
        other = g.qdq(g.conv(r, C, C // 2, k=1, relu=True, pads=[0, 0, 0, 0]), 0.05)
        y = g.qdq(g.node("Concat", [moved, other], axis=1), 0.05)
    else:  # an FP32 reader
        y = g.node("Sigmoid", [moved])
    return g.build([y])


@pytest.mark.parametrize("own", [0.3, 1.7])  # a finer grid that saturates, a coarser one that rounds
@pytest.mark.parametrize("reader", ["conv", "concat", "float"])
def test_moved_tensor_is_requantized_onto_its_own_grid(reader, own):
    qdq = _sliced_net(reader, own)
    int8 = convert(qdq).model
    assert any(n.op_type == "Requantize" for n in int8.graph), [n.op_type for n in int8.graph]
    x = eval_inputs(n=16, size=8)
    got, want = run_int8kit(int8, x), run_ort(qdq, x, optimize=False)  # the file's exact semantics
    # float evaluation order moves values by ~1e-6; one value rounded onto another grid step moves them by ~1e-2
    off = np.abs(got - want) > 1e-3 * np.abs(want).max()
    assert off.mean() <= 0.002, f"{off.mean():.2%} of the values are off the file's"


def test_moved_tensor_on_its_input_grid_needs_no_requantize():
    int8 = convert(_sliced_net("conv", 1.0)).model
    assert not any(n.op_type == "Requantize" for n in int8.graph)
