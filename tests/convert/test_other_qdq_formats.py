"""onnxruntime writes quantized models in more than one format. Its com.microsoft Q/DQ ops
(UseQDQContribOps) are the ONNX ops under another domain and convert like them; its QOperator format
(QLinearConv...) and dynamic quantization (MatMulInteger...) are refused by `convert` naming the node, and a
converted graph the engine could not run is refused before anything is written."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper

from int8kit.cli import main
from int8kit.convert.pipeline import convert
from int8kit.runtime.predictor import Predictor

from ._util import Weights, assert_agrees, calib_inputs, classifier, eval_inputs, ort_session, run_ort


def _net() -> onnx.ModelProto:
    w = Weights(0)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    inits = [w("w0", 8, 3, 3, 3, scale=0.3), w("w1", 16, 8, 3, 3, scale=0.2), w("fc", 10, 16, scale=0.3)]
    return classifier(nodes, inits, "small")


def _ort_quantized(tmp_path, fmt: str, extra: dict | None = None) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    calib = calib_inputs()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"x": x[None]}

    fp, q = tmp_path / "fp.onnx", tmp_path / "q.onnx"
    onnx.save(_net(), fp)
    quantize_static(
        str(fp), str(q), Reader(), quant_format=getattr(QuantFormat, fmt), per_channel=True, extra_options=extra or {}
    )
    return onnx.load(q)


def test_contrib_qdq_converts_like_the_onnx_ops_and_matches_onnxruntime(tmp_path):
    contrib = _ort_quantized(tmp_path, "QDQ", {"UseQDQContribOps": True})
    assert {n.domain for n in contrib.graph.node if n.op_type.endswith("QuantizeLinear")} == {"com.microsoft"}
    result = convert(contrib)
    standard = convert(_ort_quantized(tmp_path, "QDQ"))
    assert result.summary.int8_compute_ops == standard.summary.int8_compute_ops == 3
    x = eval_inputs()
    assert_agrees(Predictor(result.model, num_threads=2).run(x), run_ort(contrib, x, optimize=False))


def _refused(tmp_path, model: onnx.ModelProto, capsys) -> str:
    src, out = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(model, src)
    assert main(["convert", "--model", str(src), "-o", str(out)]) == 2
    assert not out.exists()
    return capsys.readouterr().err


def test_qoperator_model_is_refused_naming_the_node(tmp_path, capsys):
    model = _ort_quantized(tmp_path, "QOperator")
    first = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    ort_session(model)  # a valid model onnxruntime runs: the refusal is int8kit's
    err = _refused(tmp_path, model, capsys)
    assert first.name in err and "QLinearConv" in err and "QOperator" in err and "QDQ" in err


def test_dynamic_quantization_is_refused_naming_the_node(tmp_path, capsys):
    from onnxruntime.quantization import quantize_dynamic

    fp, q = tmp_path / "fp.onnx", tmp_path / "dyn.onnx"
    onnx.save(_net(), fp)
    quantize_dynamic(str(fp), str(q))
    model = onnx.load(q)
    dynamic = [n for n in model.graph.node if n.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")]
    assert dynamic
    err = _refused(tmp_path, model, capsys)
    assert "dynamic quantization" in err and any(n.name in err for n in dynamic)


def test_converted_graph_with_an_op_the_engine_lacks_is_not_written(tmp_path, capsys):
    model = _ort_quantized(tmp_path, "QDQ")
    out = model.graph.output[0].name
    model.graph.node.append(helper.make_node("Hardmax", [out], ["hard"], name="the_hardmax", axis=1))
    model.graph.output[0].name = "hard"
    ort_session(model)
    with pytest.raises(Exception, match="Hardmax"):
        Predictor(convert(model).model)  # what a user would hit later, at run time
    err = _refused(tmp_path, model, capsys)
    assert "Hardmax" in err and "the_hardmax" in err
