"""A ReduceMean over H and W with its axes as an input (opset 18+, how torch's dynamo exporter writes
adaptive_avg_pool2d(1)) is a global average pool to the quantizer and the converter alike: the squeeze-excite
multiply after it runs INT8 and the logits match onnxruntime on the same QDQ file."""

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper

from int8kit.convert.pipeline import convert
from int8kit.quantize.api import quantize_with_report

from ._util import SIZE, Weights, calib_inputs, cosine_rows, eval_inputs, run_int8kit, run_ort


def _se_net() -> onnx.ModelProto:
    w = Weights(seed=11)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("ReduceMean", ["r0", "hw"], ["squeeze"], keepdims=1),
        helper.make_node("Conv", ["squeeze", "w1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("HardSigmoid", ["c2"], ["gate"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["gate", "r0"], ["excited"]),  # gate first, as the dynamo exporter orders it
        helper.make_node("Conv", ["excited", "w3"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("ReduceMean", ["r3", "hw"], ["pooled"], keepdims=0),
        helper.make_node("Gemm", ["pooled", "fc"], ["y"], transB=1),
    ]
    inits = [
        w("w0", 16, 3, 3, 3, scale=0.3),
        w("w1", 4, 16, 1, 1, scale=0.3),
        w("w2", 16, 4, 1, 1, scale=0.3),
        w("w3", 16, 16, 3, 3, scale=0.1),
        w("fc", 10, 16, scale=0.3),
        onnx.numpy_helper.from_array(np.array([2, 3], np.int64), "hw"),
    ]
    graph = helper.make_graph(
        nodes,
        "se_opset18",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def test_axes_input_mean_quantizes_and_converts_like_a_global_pool():
    qdq = ir.serde.serialize_model(quantize_with_report(_se_net(), calib_inputs()).model)
    quantized = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert "r0" in quantized  # the mean's input, as GlobalAveragePool's would be
    result = convert(qdq)
    assert result.summary.int8_ops.get("Binary") == 1, result.summary.lines()  # the excite multiply
    assert result.summary.fp32_ops.get("Mean") == 2 and "ReduceMean" not in result.summary.fp32_ops
    x = eval_inputs(n=32)
    assert cosine_rows(run_int8kit(result.model, x), run_ort(qdq, x)).mean() >= 0.999
