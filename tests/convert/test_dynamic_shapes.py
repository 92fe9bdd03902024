"""Models exported with dynamic H and W (paddle2onnx writes them "?"): residual Adds still fuse and run INT8.

onnx names each conv output's spatial dims with fresh symbols, so the two operands of a residual Add look
different; intake's probe shapes (two concrete input sizes) show they are the same function of the input.
A true broadcast (a pooled [N, C, 1, 1] tensor added to a feature map) must not be mistaken for one.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from int8kit.convert.pipeline import convert

from ._util import Weights, assert_agrees, calib_inputs, classifier, eval_inputs, int8kit_qdq, run_int8kit, run_ort


def _dynamic_residual_net(broadcast: bool = False) -> onnx.ModelProto:
    init = Weights(5)

    inits = [init("w0", 8, 3, 3, 3, scale=0.3), init("w1", 8, 8, 3, 3, scale=0.2), init("w2", 8, 8, 1, 1, scale=0.3)]
    inits += [init("fc", 10, 8, scale=0.3)]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2], name="stem"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1], name="branch"),
    ]
    if broadcast:  # r0 + conv(GlobalAveragePool(r0)): [N, 8, h, w] + [N, 8, 1, 1]
        nodes += [helper.make_node("GlobalAveragePool", ["r0"], ["pooled"], name="pool")]
        nodes += [helper.make_node("Conv", ["pooled", "w2"], ["c2"], name="shortcut")]
    else:
        nodes += [helper.make_node("Conv", ["r0", "w2"], ["c2"], name="shortcut")]
    nodes += [
        helper.make_node("Add", ["c1", "c2"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "dynamic", input_dims=["N", 3, "H", "W"], strict=False)


def test_residual_add_of_dynamic_size_branches_fuses_and_matches_the_qdq_model():
    model = _dynamic_residual_net()
    qdq = int8kit_qdq(model, calib_inputs())
    result = convert(qdq)
    adds = [n for n in result.model.graph if n.op_type in ("Add", "Binary")]
    sums = [
        n for n in result.model.graph if n.op_type == "Conv" and "sum" in list(n.attributes["post_ops"].as_strings())
    ]
    assert not adds and len(sums) == 1, "\n".join(result.summary.lines())
    x = eval_inputs(n=32)
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x, optimize=False))  # the graph as written


def test_a_true_broadcast_with_dynamic_sizes_is_not_fused_as_a_residual():
    model = _dynamic_residual_net(broadcast=True)
    result = convert(int8kit_qdq(model, calib_inputs()))
    sums = [
        n for n in result.model.graph if n.op_type == "Conv" and "sum" in list(n.attributes["post_ops"].as_strings())
    ]
    assert not sums
    x = eval_inputs(n=16)
    np.testing.assert_allclose(run_int8kit(model, x), run_ort(model, x), rtol=1e-4, atol=1e-4)
