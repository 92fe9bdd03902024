"""FuseScalarLinearPass: PP-HGNetV2's learnable scalar affine after each conv's ReLU (x * a + b) runs as
`linear` post-ops of the conv: FP32 equals onnxruntime, INT8 computes what int8kit's and onnxruntime's QDQ
files say (the rounding between ReLU, Mul and Add kept as fq post-ops), and no Mul/Add is left."""

from __future__ import annotations

import numpy as np
import pytest
from convert._util import (  # tests/convert helpers (tests/ is on sys.path)
    Weights,
    assert_agrees,
    calib_inputs,
    classifier,
    eval_inputs,
    int8kit_qdq,
    ort_qdq,
    run_ort,
)
from onnx import helper, numpy_helper

from int8kit.runtime.predictor import Predictor


def _lab_net():
    w = Weights(9)
    inits = [w("w0", 16, 3, 3, 3, scale=0.3), w("b0", 16, scale=0.1), w("w1", 16, 16, 3, 3, scale=0.1)]
    inits += [w("fc", 10, 16, scale=0.3)]
    inits += [numpy_helper.from_array(np.array([v], np.float32), n) for n, v in (("a0", 1.7), ("s0", -0.4))]
    inits += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("a1", 0.6), ("s1", 0.25))]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["k0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["k0"], ["r0"], name="relu0"),
        helper.make_node("Mul", ["r0", "a0"], ["m0"], name="lab0_scale"),
        helper.make_node("Add", ["m0", "s0"], ["l0"], name="lab0_bias"),
        helper.make_node("Conv", ["l0", "w1"], ["k1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["k1"], ["r1"], name="relu1"),
        helper.make_node("Mul", ["a1", "r1"], ["m1"], name="lab1_scale"),  # constant first: commutes
        helper.make_node("Add", ["m1", "s1"], ["l1"], name="lab1_bias"),
        helper.make_node("GlobalAveragePool", ["l1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "lab")


def _fused(model) -> bool:
    """No Mul/Add left, and no int8kit.Affine standing in for them: the scalars are the convs' post-ops."""
    ops = [n.op_type for n in model.graph]
    return not {"Mul", "Add", "Affine", "Binary"} & set(ops)


def test_fp32_runs_the_scalar_affine_as_post_ops_and_matches_onnxruntime():
    model, x = _lab_net(), eval_inputs(n=16)
    predictor = Predictor(model, num_threads=2)
    assert _fused(predictor.model)
    np.testing.assert_allclose(predictor.run(x), run_ort(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["int8kit", "ort_pt_u8", "ort_pc_s8_sym"])
def test_int8_keeps_the_file_s_roundings_inside_the_fused_conv(variant):
    from int8kit.convert.pipeline import convert

    model = _lab_net()
    qdq = int8kit_qdq(model, calib_inputs()) if variant == "int8kit" else ort_qdq(model, calib_inputs(), variant)
    converted = convert(qdq).model
    assert _fused(converted)
    x = eval_inputs(n=64)
    assert_agrees(Predictor(converted, num_threads=2).run(x), run_ort(qdq, x, optimize=False), cos=0.9995)
