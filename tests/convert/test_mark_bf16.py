"""Per-layer bf16 in converted models: ConvertConfig.bf16_nodes / bf16_op_ids and `convert --bf16-nodes`.

A hand-written QDQ model runs conv1 INT8 and leaves conv2, conv3 and fc float; conv2 and fc are asked
for bf16. The converted model must run INT8, bf16 and FP32 side by side and compute what onnxruntime
computes on the QDQ file with exactly those two layers' inputs and weights rounded to bf16.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import convert
from int8kit.errors import ConfigError
from int8kit.runtime.precision import bf16_supported

from ._util import QDQGraph, run_int8kit, run_ort

BF16 = frozenset({"conv2", "fc"})


def bf16_round(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 -> float32, round to nearest even (what oneDNN's conversion does)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def _float_conv(g: QDQGraph, x: str, cin: int, cout: int, name: str) -> str:
    w = (g.rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
    b = g.rng.normal(0, 0.1, cout).astype(np.float32)
    y = g.node("Conv", [x, g.const(f"{name}.w", w), g.const(f"{name}.b", b)], name=name, pads=[1, 1, 1, 1])
    return g.node("Relu", [y], name=f"{name}_relu")


def mixed_qdq() -> onnx.ModelProto:
    """input -> conv1 (INT8) -> conv2 (float) -> conv3 (float) -> GAP -> Flatten -> fc (float)."""
    g = QDQGraph(shape=("N", 3, 12, 12), seed=3)
    x = g.qdq("input", 4.0 / 127, 0, np.int8)
    y = g.qdq(g.conv(x, 3, 16, relu=True, name="conv1"), 3.0 / 255)
    y = _float_conv(g, y, 16, 24, "conv2")
    y = _float_conv(g, y, 24, 24, "conv3")
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y], name="gap")], name="flatten")
    w = (g.rng.standard_normal((10, 24)) * 0.3).astype(np.float32)
    b = g.rng.normal(0, 0.1, 10).astype(np.float32)
    out = g.node("Gemm", [y, g.const("fc.w", w), g.const("fc.b", b)], "logits", name="fc", transB=1)
    return g.build([out], [["N", 10]])


def emulated(qdq: onnx.ModelProto, names: frozenset[str]) -> onnx.ModelProto:
    """The QDQ model with the inputs and weights of `names` rounded to bf16 (Cast to BFLOAT16 and back)."""
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    inits = {t.name: t for t in out.graph.initializer}
    nodes = []
    for node in out.graph.node:
        if node.name in names:
            w = inits[node.input[1]]
            w.CopyFrom(numpy_helper.from_array(bf16_round(numpy_helper.to_array(w)), w.name))
            rounded = f"{node.name}_bf16_in"
            nodes.append(helper.make_node("Cast", [node.input[0]], [rounded + "_t"], to=TensorProto.BFLOAT16))
            nodes.append(helper.make_node("Cast", [rounded + "_t"], [rounded], to=TensorProto.FLOAT))
            node.input[0] = rounded
        nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _node(model, name: str):
    return next(n for n in model.graph if n.name == name)


def test_bf16_nodes_are_marked_and_others_untouched():
    result = convert(mixed_qdq(), ConvertConfig(bf16_nodes=BF16))
    m = result.model
    marked = {n.name for n in m.graph if "precision" in n.attributes}
    assert marked == BF16
    assert all(_node(m, n).attributes["precision"].value == "bf16" for n in BF16)
    assert _node(m, "conv1").inputs[1].const_value.numpy().dtype == np.int8  # INT8 stays INT8
    assert _node(m, "conv3").inputs[1].const_value.numpy().dtype == np.float32  # FP32 stays FP32


def test_op_ids_select_the_same_nodes():
    by_name = convert(mixed_qdq(), ConvertConfig(bf16_nodes=BF16)).model
    ids = tuple(int(_node(by_name, n).metadata_props["int8kit.id"]) for n in sorted(BF16))
    by_id = convert(mixed_qdq(), ConvertConfig(bf16_op_ids=ids)).model
    assert {n.name for n in by_id.graph if "precision" in n.attributes} == BF16


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16 kernels")
def test_mixed_int8_bf16_fp32_model_matches_bf16_emulation():
    qdq = mixed_qdq()
    x = np.random.default_rng(5).standard_normal((8, 3, 12, 12)).astype(np.float32)
    mixed = convert(qdq, ConvertConfig(bf16_nodes=BF16)).model
    got = run_int8kit(mixed, x)
    fp32_ref = run_ort(qdq, x, optimize=False)
    bf16_ref = run_ort(emulated(qdq, BF16), x, optimize=False)
    scale = np.abs(fp32_ref).max()
    err_emulated = np.abs(got - bf16_ref).max() / scale
    err_fp32 = np.abs(got - fp32_ref).max() / scale
    assert err_fp32 < 3e-2, f"bf16 layers off the FP32 QDQ model by {err_fp32:.3g}"
    assert err_emulated < 1e-4, f"off the bf16 emulation by {err_emulated:.3g} (FP32: {err_fp32:.3g})"
    assert err_fp32 > 10 * err_emulated, "bf16 made no difference: the layers ran FP32"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ConvertConfig(bf16_nodes=frozenset({"nope"})), "bf16 nodes not in the model: 'nope'"),
        (ConvertConfig(bf16_nodes=frozenset({"conv1"})), "runs INT8"),
        (ConvertConfig(bf16_nodes=frozenset({"gap"})), "is a GlobalAveragePool"),
        (ConvertConfig(bf16_nodes=frozenset({"conv2_relu"})), "fused into 'conv2'"),
        (ConvertConfig(bf16_op_ids=(999,)), "bf16 op ids not in the model: 999"),
    ],
)
def test_bad_requests_name_the_node(config, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        convert(mixed_qdq(), config)


def test_bf16_nodes_must_be_names():
    with pytest.raises(ConfigError, match="set of node names"):
        ConvertConfig(bf16_nodes="conv2")
    assert ConvertConfig(bf16_nodes=["a", "b"]).bf16_nodes == frozenset({"a", "b"})


def test_convert_cli_flag(tmp_path, capsys):
    from int8kit.cli import main

    qdq = tmp_path / "m_qdq.onnx"
    onnx.save(mixed_qdq(), qdq)
    out = tmp_path / "m_int8.onnx"
    assert main(["convert", str(qdq), "-o", str(out), "--bf16-nodes", "conv2,fc"]) == 0
    assert "bf16 (instead of FP32): 2 op(s): conv2, fc" in capsys.readouterr().out
    saved = onnx.load(out)
    marked = {n.name for n in saved.graph.node if any(a.name == "precision" for a in n.attribute)}
    assert marked == BF16
    assert main(["convert", str(qdq), "-o", str(tmp_path / "x.onnx"), "--bf16-nodes", "conv1"]) == 2
    assert "runs INT8" in capsys.readouterr().err
