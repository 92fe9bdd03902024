"""validate_qdq: convert refuses models it would turn into a wrong answer, naming the node and tensor.

Bad Q/DQ scales (0, negative, NaN, inf) on activations or weights, an already converted int8kit model
and an FP32 model without any Q/DQ each give one ModelError; the CLI prints one line, exits 2 and writes
nothing.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from int8kit.cli import main
from int8kit.convert.pipeline import convert
from int8kit.convert.validate_qdq import ValidateQDQPass
from int8kit.errors import ModelError
from int8kit.ir.load import as_ir_model
from int8kit.ir.save import save_model

from ._util import QDQGraph

BAD_SCALES = [0.0, -0.02, math.nan, math.inf, -math.inf]


def _model() -> onnx.ModelProto:
    g = QDQGraph()
    x = g.qdq("input", 0.03, 0, np.int8)
    y = g.conv(x, 3, 4, relu=True, name="conv_a")
    y = g.qdq(y, 0.02, 0, np.uint8)
    return g.build([g.conv(y, 4, 2, name="conv_b", output="y")])


def _with_scale(model: onnx.ModelProto, init_name: str, value: float, index: int = 0) -> onnx.ModelProto:
    """A copy of `model` whose scale initializer `init_name` holds `value` at `index`."""
    out = onnx.ModelProto.FromString(model.SerializeToString())
    for k, t in enumerate(out.graph.initializer):
        if t.name == init_name:
            a = numpy_helper.to_array(t).copy()
            a.reshape(-1)[index] = value
            out.graph.initializer[k].CopyFrom(numpy_helper.from_array(a, init_name))
            return out
    raise KeyError(init_name)


def _cli(capsys, tmp_path, model: onnx.ModelProto) -> tuple[int, list[str], object]:
    src, dst = tmp_path / "in.onnx", tmp_path / "out" / "int8.onnx"
    onnx.save(model, src)
    capsys.readouterr()
    code = main(["convert", "--quant-model-path", str(src), "--int8-model-save-path", str(dst)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err, dst


def test_good_model_passes_unchanged():
    model = as_ir_model(_model())
    result = ValidateQDQPass()(model)
    assert not result.modified


@pytest.mark.parametrize("scale", BAD_SCALES)
def test_bad_activation_scale_names_node_and_tensor(scale):
    # q8 is the pair on conv_a's output: its QuantizeLinear is q8_quant, its scale q8_scale.
    bad = _with_scale(_model(), "q8_scale", scale)
    with pytest.raises(ModelError) as info:
        convert(bad)
    msg = str(info.value)
    assert "q8_quant" in msg and "q8_scale" in msg and f"= {scale:g}" in msg


@pytest.mark.parametrize("scale", BAD_SCALES)
def test_bad_per_channel_weight_scale_names_channel(scale):
    # conv_a's weights are w3 (4 output channels): break channel 2 only.
    bad = _with_scale(_model(), "w3_scale", scale, index=2)
    with pytest.raises(ModelError) as info:
        convert(bad)
    msg = str(info.value)
    assert "w3_dequant" in msg and "w3_scale[2]" in msg and "w3_int8" in msg


def test_scale_in_a_constant_node_is_checked_too():
    model = _model()
    g = model.graph
    k = next(i for i, t in enumerate(g.initializer) if t.name == "q1_scale")
    del g.initializer[k]
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "q1_scale")
    g.node.insert(0, onnx.helper.make_node("Constant", [], ["q1_scale"], name="scale_const", value=zero))
    with pytest.raises(ModelError, match="q1_quant.*q1_scale"):
        convert(model)


@pytest.mark.parametrize("scale", [0.0, math.nan])
def test_cli_refuses_bad_scale_in_one_line_and_writes_nothing(capsys, tmp_path, scale):
    code, err, dst = _cli(capsys, tmp_path, _with_scale(_model(), "q1_scale", scale))
    assert code == 2 and len(err) == 1, err
    assert "q1_quant" in err[0] and "q1_scale" in err[0]
    assert not dst.exists() and not dst.parent.exists()


def test_already_converted_model_is_refused(capsys, tmp_path):
    int8 = tmp_path / "int8.onnx"
    save_model(convert(_model()).model, int8)
    code, err, dst = _cli(capsys, tmp_path, onnx.load(int8))
    assert code == 2 and len(err) == 1, err
    assert "already converted" in err[0] and "int8kit.optimized" in err[0]
    assert not dst.exists()


def test_converted_model_without_metadata_is_refused_by_its_int8kit_nodes(tmp_path):
    int8 = tmp_path / "int8.onnx"
    save_model(convert(_model()).model, int8)
    proto = onnx.load(int8)
    del proto.metadata_props[:]
    with pytest.raises(ModelError) as info:
        convert(proto)
    msg = str(info.value)
    node = next(n for n in proto.graph.node if n.domain == "int8kit")
    assert "already converted" in msg and repr(node.name) in msg and "'int8kit' domain" in msg


def test_fp32_model_without_qdq_says_run_quantize_first(capsys, tmp_path):
    g = QDQGraph()
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = g.node("Conv", ["input", g.const("w", w)], "y", name="conv", pads=[1, 1, 1, 1])
    code, err, dst = _cli(capsys, tmp_path, g.build([y]))
    assert code == 2 and len(err) == 1, err
    assert "no QuantizeLinear/DequantizeLinear" in err[0] and "run int8kit quantize first" in err[0]
    assert not dst.exists()
