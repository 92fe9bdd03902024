"""A standalone zero Pad between INT8 ops runs on INT8 data (0 is on every grid with zero point 0).

Conv -> Relu -> Pad(0) -> MaxPool -> Conv: the Pad cannot fold into a Conv (it feeds a pool). With
int8kit's and onnxruntime's QDQ files it must run INT8 when the zero point is 0, stay FP32 with the
reason otherwise, and in every case match the QDQ model run in onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from int8kit.convert.pipeline import convert

from ._util import (
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


def _padded_pool_net(pad_value: float = 0.0) -> onnx.ModelProto:
    init = Weights(3)

    inits = [
        init("w0", 16, 3, 3, 3, scale=0.3),
        init("b0", 16, scale=0.1),
        init("w1", 16, 16, 3, 3, scale=0.1),
        init("b1", 16, scale=0.1),
        init("fc", 10, 16, scale=0.3),
        numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array(pad_value, np.float32), "value"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Pad", ["r0", "pads", "value"], ["p"], name="pad"),
        helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Conv", ["m", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "padded_pool")


def _qdq(model, variant):
    return int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)


@pytest.mark.parametrize("variant", ["int8kit", "ort_pc_s8_sym", "ort_pt_u8"])
def test_zero_pad_runs_int8_and_matches_the_qdq_model(variant):
    qdq = _qdq(_padded_pool_net(), variant)
    result = convert(qdq)
    reasons = {op.name: op.reason for op in result.summary.fp32_reasons}
    assert "pad" not in reasons and result.summary.int8_ops["Pad"] == 1, "\n".join(result.summary.lines())
    x = eval_inputs(n=64)
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))


def test_a_pad_with_another_value_stays_fp32_and_says_why():
    qdq = _qdq(_padded_pool_net(pad_value=0.5), "ort_pc_s8_sym")
    result = convert(qdq)
    reasons = {op.name: op.reason for op in result.summary.fp32_reasons}
    assert "other than 0" in reasons.get("pad", ""), "\n".join(result.summary.lines())
    x = eval_inputs(n=64)
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))
