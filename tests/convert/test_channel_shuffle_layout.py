"""A channel shuffle of INT8 data stays channels-last: one copy, no reorder into nchw and back.

INT8 convolutions write nhwc; ShuffleNet's shuffle (Reshape to (N, g, C/g, H, W), Transpose
(0, 2, 1, 3, 4), Reshape back) must then be views around a single Transpose copy, and the INT8 model
must match the QDQ model run in onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import (
    SIZE,
    Weights,
    assert_agrees,
    calib_inputs,
    classifier,
    eval_inputs,
    int8kit_qdq,
    ort_qdq,
    run_int8kit,
    run_ort,
)


def _shuffle_net(channels: int, groups: int) -> onnx.ModelProto:
    init = Weights(0)

    half = SIZE // 2
    inits = [
        init("w0", channels, 3, 3, 3, scale=0.3),
        init("w1", channels, channels, 1, 1, scale=0.2),
        init("fc", 10, channels, scale=0.3),
        numpy_helper.from_array(np.array([0, groups, channels // groups, half, half], np.int64), "split"),
        numpy_helper.from_array(np.array([0, channels, half, half], np.int64), "merge"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Reshape", ["r0", "split"], ["s5"], name="split_channels"),
        helper.make_node("Transpose", ["s5"], ["t5"], perm=[0, 2, 1, 3, 4], name="shuffle"),
        helper.make_node("Reshape", ["t5", "merge"], ["shuffled"], name="merge_channels"),
        helper.make_node("Conv", ["shuffled", "w1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "shuffle")


@pytest.mark.parametrize(
    ("channels", "groups", "variant"), [(32, 2, "int8kit"), (48, 3, "int8kit"), (32, 4, "ort_pt_u8")]
)
def test_int8_channel_shuffle_is_one_copy_and_matches_the_qdq_model(channels, groups, variant):
    model = _shuffle_net(channels, groups)
    qdq = int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)
    int8 = convert(qdq).model
    program = Predictor(int8, num_threads=1).program({"x": (2, 3, SIZE, SIZE)})
    steps = list(zip(program.labels, program.impls, strict=True))
    assert not [s for s in steps if s[1].startswith("ref")], steps
    copies = [label for label, _ in steps if "split_channels" in label or "merge_channels" in label]
    copies += [label for label, _ in steps if label.startswith("reorder for") and "conv1" in label]
    assert not copies, steps
    x = eval_inputs(n=32)
    assert_agrees(run_int8kit(int8, x), run_ort(qdq, x))
