"""MatMul with a constant weight over the last axis of a rank-3 activation (a token-mixing head).

The graph a user's exporter writes for "features as tokens": Conv -> Reshape [N, C, HW] -> Transpose
[N, HW, C] -> MatMul W[C, M] + bias -> Relu -> ReduceMean over tokens -> Gemm. It must run FP32 as
onnxruntime does, and INT8 (int8kit's and onnxruntime's QDQ files) with the MatMul as an INT8 Dense,
matching the QDQ model run in onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from int8kit.convert.pipeline import convert

from ._util import (
    SIZE,
    assert_agrees,
    calib_inputs,
    classifier,
    eval_inputs,
    int8kit_qdq,
    ort_qdq,
    run_int8kit,
    run_ort,
)


def _token_head() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    c, m, classes = 16, 24, 10
    hw = (SIZE // 2) ** 2

    def init(name, *shape, scale=None):
        scale = scale if scale is not None else np.sqrt(2.0 / np.prod(shape[1:] or shape))
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("cw", c, 3, 3, 3),
        init("cb", c, scale=0.1),
        init("mw", c, m, scale=np.sqrt(2.0 / c)),
        init("mb", m, scale=0.1),
        init("gw", classes, m),
        init("gb", classes, scale=0.1),
        numpy_helper.from_array(np.array([0, c, hw], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu0"),
        helper.make_node("Reshape", ["r", "shape"], ["tokens_t"], name="reshape"),
        helper.make_node("Transpose", ["tokens_t"], ["tokens"], perm=[0, 2, 1], name="transpose"),
        helper.make_node("MatMul", ["tokens", "mw"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mb"], ["mmb"], name="bias"),
        helper.make_node("Relu", ["mmb"], ["act"], name="relu1"),
        helper.make_node("ReduceMean", ["act"], ["pooled"], axes=[1], keepdims=0, name="pool"),
        helper.make_node("Gemm", ["pooled", "gw", "gb"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "token_head", classes=classes)


def test_fp32_matches_onnxruntime():
    model, x = _token_head(), eval_inputs(n=8)
    np.testing.assert_allclose(run_int8kit(model, x), run_ort(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["int8kit", "ort_pc_s8_sym", "ort_pt_u8"])
def test_int8_matmul_runs_int8_and_matches_the_qdq_model(variant):
    model = _token_head()
    qdq = int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)
    result = convert(qdq)
    dense = [n for n in result.model.graph if n.op_type == "Dense" and n.name == "matmul"]
    assert dense and dense[0].attributes.get_int("axis") == 2
    assert "x_scale" in dense[0].attributes, "\n".join(result.summary.lines())
    x = eval_inputs(n=64)
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))
