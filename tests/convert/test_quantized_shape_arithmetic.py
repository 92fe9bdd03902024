"""onnxruntime's quantize_static also rounds float shape arithmetic (timm's TF-style "same" padding computes
its pads from the input shape in float, then Casts them to int64): the converter keeps those Q/DQ as they
are, and the compile-time evaluation of the shape subgraph computes what onnxruntime computes."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import run_ort


def _model():
    def init(name, value, dtype):
        return helper.make_tensor(name, dtype, np.shape(value), np.asarray(value).reshape(-1).tolist())

    inits = [
        init("s", 1.0, TensorProto.FLOAT),
        init("z", 0, TensorProto.UINT8),
        init("half", 0.5, TensorProto.FLOAT),
        init("start", [2], TensorProto.INT64),
        init("end", [4], TensorProto.INT64),
        init("zeros", [0.0, 0.0], TensorProto.FLOAT),
        init("xs", 0.05, TensorProto.FLOAT),
        init("w", np.full((4, 4, 3, 3), 0.1).tolist(), TensorProto.FLOAT),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "z"], ["xd"]),
        helper.make_node("Shape", ["xd"], ["shape"]),
        helper.make_node("Slice", ["shape", "start", "end"], ["hw"]),
        helper.make_node("Cast", ["hw"], ["hw_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["hw_f", "half"], ["half_hw"]),  # ceil(size / stride) arithmetic, in float
        helper.make_node("Floor", ["half_hw"], ["pad_f"]),
        helper.make_node("QuantizeLinear", ["pad_f", "s", "z"], ["pad_q"]),  # what onnxruntime writes
        helper.make_node("DequantizeLinear", ["pad_q", "s", "z"], ["pad_d"]),
        helper.make_node("Concat", ["zeros", "pad_d", "zeros", "pad_d"], ["pads_f"], axis=0),  # in float
        helper.make_node("QuantizeLinear", ["pads_f", "s", "z"], ["pads_q"]),
        helper.make_node("DequantizeLinear", ["pads_q", "s", "z"], ["pads_d"]),
        helper.make_node("Cast", ["pads_d"], ["pads"], to=TensorProto.INT64),
        helper.make_node("Pad", ["xd", "pads"], ["padded"]),
        helper.make_node("Conv", ["padded", "w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "quantized_pads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_rounded_float_pads_evaluate_at_compile_time_as_onnxruntime_does():
    model = _model()
    x = np.abs(np.random.default_rng(0).standard_normal((2, 4, 6, 6))).astype(np.float32)
    got = Predictor(convert(model).model, num_threads=1).run(x)
    want = run_ort(model, x, optimize=False)
    assert got.shape == want.shape == (2, 4, 10, 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
