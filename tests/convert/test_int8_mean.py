"""The squeeze-excite global average of INT8 data (int8kit.Mean) reads the nhwc INT8 tensor directly.

Conv -> SiLU-free ReLU -> GlobalAveragePool (own encoding) -> 1x1 convs -> Sigmoid -> Mul: the Mean must
equal the float mean of the dequantized INT8 input (numpy), run on an optimised kernel with no reorder
of its big input, and the whole net must match the QDQ model run in onnxruntime, zero points included.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

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
    run_int8kit_output,
    run_ort,
)


def _se_net() -> onnx.ModelProto:
    init = Weights(11)

    c, r = 32, 8
    inits = [
        init("w0", c, 3, 3, 3, scale=0.3),
        init("b0", c, scale=0.2),
        init("w1", r, c, 1, 1, scale=0.3),
        init("b1", r, scale=0.1),
        init("w2", c, r, 1, 1, scale=0.3),
        init("b2", c, scale=0.1),
        init("w3", 16, c, 1, 1, scale=0.2),
        init("fc", 10, 16, scale=0.3),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["a"], name="relu0"),
        helper.make_node("GlobalAveragePool", ["a"], ["s"], name="squeeze"),
        helper.make_node("Conv", ["s", "w1", "b1"], ["e1"], name="fc1"),
        helper.make_node("Relu", ["e1"], ["e1r"], name="relu1"),
        helper.make_node("Conv", ["e1r", "w2", "b2"], ["e2"], name="fc2"),
        helper.make_node("Sigmoid", ["e2"], ["gate"], name="gate"),
        helper.make_node("Mul", ["a", "gate"], ["scaled"], name="excite"),
        helper.make_node("Conv", ["scaled", "w3"], ["p"], name="project"),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "se")


@pytest.mark.parametrize("variant", ["int8kit", "ort_pt_u8", "ort_pc_s8_sym"])
def test_se_mean_of_int8_data_is_exact_fast_and_the_net_matches_the_qdq_model(variant):
    model = _se_net()
    qdq = int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)
    result = convert(qdq)
    graph = result.model.graph
    mean = next(n for n in graph if n.op_type == "Mean" and n.name == "squeeze")
    x_int8 = mean.inputs[0].name
    x = eval_inputs(n=16)
    q = run_int8kit_output(result.model, x, x_int8).astype(np.float64)
    scale, zp = mean.attributes.get_float("x_scale"), mean.attributes.get_int("x_zero_point", 0)
    want = scale * (q.mean(axis=(2, 3), keepdims=True) - zp)
    got = run_int8kit_output(result.model, x, mean.outputs[0].name)
    y_type = mean.attributes.get_int("y_type", 1)
    if y_type == 1:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:  # the mean written straight onto the grid of the INT8 conv that reads it: rounded once, exactly
        y_scale, y_zp = mean.attributes.get_float("y_scale"), mean.attributes.get_int("y_zero_point", 0)
        info = np.iinfo(np.uint8 if y_type == 2 else np.int8)
        want = np.clip(np.rint(want / y_scale) + y_zp, info.min, info.max)
        diff = np.abs(got.astype(np.int64) - want)
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.01  # a float tie may round either way

    program = Predictor(result.model, num_threads=1).program({"x": (4, 3, SIZE, SIZE)})
    steps = [(label, impl) for label, impl in zip(program.labels, program.impls, strict=True) if "squeeze" in label]
    assert steps and all(not impl.startswith("ref") for _, impl in steps), steps
    assert not [label for label, _ in steps if label.startswith("reorder")], steps
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))
