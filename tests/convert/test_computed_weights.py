"""A conv weight the model computes from constants (NF-Net's and BiT's weight standardisation: a
BatchNormalization in training mode over the reshaped weight) is quantized by onnxruntime's
quantize_static as a chain of fake-quant steps: int8 weight -> DQ -> BatchNormalization -> Q -> DQ ->
Reshape -> Q -> DQ -> Conv. The converter folds the chain, rounding at every step the file rounds, and
its output matches the QDQ file run in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import assert_agrees, calib_inputs, classifier, eval_inputs, ort_qdq, run_ort


def _standardised(name: str, w: np.ndarray) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes computing the weight standardised per output channel, as torch exports timm's StdConv2d."""
    o = w.shape[0]
    inits = [
        numpy_helper.from_array(w, f"{name}_raw"),
        numpy_helper.from_array(np.array([1, o, -1], np.int64), f"{name}_rows"),
        numpy_helper.from_array(np.array(w.shape, np.int64), f"{name}_shape"),
        numpy_helper.from_array(np.ones(o, np.float32), f"{name}_gain"),
        numpy_helper.from_array(np.zeros(o, np.float32), f"{name}_shift"),
        numpy_helper.from_array(np.zeros(o, np.float32), f"{name}_mean"),
        numpy_helper.from_array(np.ones(o, np.float32), f"{name}_var"),
    ]
    nodes = [
        helper.make_node("Reshape", [f"{name}_raw", f"{name}_rows"], [f"{name}_r"]),
        helper.make_node(
            "BatchNormalization",
            [f"{name}_r", f"{name}_gain", f"{name}_shift", f"{name}_mean", f"{name}_var"],
            [f"{name}_std", f"{name}_m", f"{name}_v"],
            epsilon=1e-5,
            training_mode=1,
        ),
        helper.make_node("Reshape", [f"{name}_std", f"{name}_shape"], [name]),
    ]
    return nodes, inits, name


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    for i, (cin, cout) in enumerate([(3, 16), (16, 24)]):
        n, t, w = _standardised(f"w{i}", rng.standard_normal((cout, cin, 3, 3)).astype(np.float32))
        nodes += [*n, helper.make_node("Conv", [x, w], [f"c{i}"], pads=[1, 1, 1, 1], strides=[2, 2])]
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        inits += t
        x = f"r{i}"
    inits.append(numpy_helper.from_array(rng.standard_normal((10, 24)).astype(np.float32) * 0.1, "fc"))
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc"], ["y"], transB=1),
    ]
    return classifier(nodes, inits, "standardised_weights")


def test_onnxruntime_qdq_of_computed_weights_folds_and_matches_onnxruntime():
    for variant in ("ort_pc_u8", "ort_pc_s8_sym"):
        qdq = ort_qdq(_model(), calib_inputs(), variant, pre_process=False)
        ops = [n.op_type for n in qdq.graph.node]
        assert "BatchNormalization" in ops  # the chain the converter has to fold is in the file
        result = convert(qdq)
        assert "BatchNormalization" not in [n.op_type for n in result.model.graph], variant
        convs = [n for n in result.model.graph if n.op_type == "Conv"]
        assert len(convs) == 2 and all(c.inputs[1].const_value is not None for c in convs), variant
        x = eval_inputs()
        got = Predictor(result.model, num_threads=2).run(x)
        assert_agrees(got, run_ort(qdq, x, optimize=False))
