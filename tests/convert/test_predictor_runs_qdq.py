"""A QDQ (fake-quant) model handed to the Predictor runs as the INT8 model `int8kit convert` makes of it.

`int8kit test --infer-model qdq.onnx` is what a user types after quantizing; refusing the file's Conv as
"unsupported" (its weight is a DequantizeLinear output) would be wrong and unhelpful.
"""

import numpy as np
from onnx import helper

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import Weights, calib_inputs, classifier, cosine_rows, eval_inputs, int8kit_qdq, run_ort


def _net():
    w = Weights(seed=3)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("GlobalAveragePool", ["r0"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    return classifier(nodes, [w("w0", 8, 3, 3, 3, scale=0.3), w("fc", 10, 8, scale=0.3)], "qdq_predictor")


def test_a_qdq_model_runs_as_its_converted_int8_model():
    qdq = int8kit_qdq(_net(), calib_inputs())
    x = eval_inputs(n=16)
    direct = Predictor(qdq, num_threads=1)
    assert any(n.op_type == "Conv" and n.domain == "int8kit" for n in direct.model.graph)
    got = direct.run(x)
    np.testing.assert_array_equal(got, Predictor(convert(qdq).model, num_threads=1).run(x))
    assert cosine_rows(got, run_ort(qdq, x)).mean() >= 0.999
