"""A model that does its own preprocessing (uint8 NHWC pixels -> Cast -> Transpose -> (x - mean) / std ->
conv), as deployable exports often are: the engine runs the run-time Cast, feeds the uint8 input as it
is, and the quantizer calibrates it on uint8 images. onnxruntime is the reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from int8kit.errors import InputError, UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import init, run_ort

MEAN = np.array([123.7, 116.3, 103.5], np.float32).reshape(1, 3, 1, 1)
STD = np.array([58.4, 57.1, 57.4], np.float32).reshape(1, 3, 1, 1)


def _model(cast_to: int = TensorProto.FLOAT) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=cast_to, name="to_float"),
        helper.make_node("Transpose", ["xf"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Sub", ["t", "mean"], ["s"]),
        helper.make_node("Div", ["s", "std"], ["n"]),
        helper.make_node("Conv", ["n", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    inits = [
        init("mean", MEAN),
        init("std", STD),
        init("w", (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)),
        init("fc", (rng.standard_normal((10, 8)) * 0.3).astype(np.float32)),
    ]
    graph = helper.make_graph(
        nodes,
        "preprocessing_inside",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", 16, 16, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_uint8_input_and_run_time_cast_match_onnxruntime():
    x = _pixels(4, 1)
    got = Predictor(_model(), num_threads=1).run(x)
    np.testing.assert_allclose(got, run_ort(_model(), {"x": x}), rtol=1e-5, atol=1e-5)


def test_float_data_for_a_uint8_input_is_refused_naming_it():
    with pytest.raises(InputError, match="input 'x': expected uint8"):
        Predictor(_model(), num_threads=1).run(_pixels(2, 1).astype(np.float32) + 0.5)


def test_cast_of_run_time_data_to_an_integer_is_refused_naming_the_node():
    model = _model(cast_to=TensorProto.INT32)
    with pytest.raises(UnsupportedOpError, match="to_float"):
        Predictor(model, num_threads=1).run(_pixels(2, 1))


def test_quantizer_calibrates_on_uint8_images_and_the_int8_model_matches_the_qdq_file():
    from int8kit.convert.pipeline import convert
    from int8kit.quantize import QuantizeConfig, quantize_model

    qdq = quantize_model(_model(), _pixels(8, 2), QuantizeConfig(num_samples=8, backend="onnxruntime"))
    int8 = convert(qdq).model
    assert any(n.op_type == "Conv" and "x_scale" in n.attributes for n in int8.graph)  # the conv runs INT8
    x = _pixels(8, 3)
    got, want = Predictor(int8, num_threads=1).run(x), run_ort(qdq, {"x": x})
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.999


def test_benchmark_feeds_a_uint8_input_synthetic_pixels(tmp_path):
    from int8kit.cli import main

    path = tmp_path / "pre.onnx"
    onnx.save(_model(), path)
    assert main(["benchmark", "--infer-model", str(path), "--niter", "2", "--batch-size", "2"]) == 0
