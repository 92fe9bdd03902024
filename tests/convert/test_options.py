"""Options and errors: scope checks, --op-ids-to-skip really keeps convs FP32,
--debug writes one .dot per pass, and the CLI reports errors as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from int8kit.cli import main
from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import conversion_passes, convert
from int8kit.errors import ConfigError
from int8kit.ir.dot import FP32_COLOR, INT8_COLOR
from int8kit.ir.node_ids import ID_KEY, node_id
from int8kit.ir.pipeline import pass_names
from int8kit.scope import Scope

from ._util import assert_agrees, eval_inputs, run_int8kit, run_ort

MODEL, VARIANT = "resnet_tiny", "ort_pc_u8"


def test_unknown_op_type_is_named():
    with pytest.raises(ConfigError, match="Bogus"):
        ConvertConfig(scope=Scope(op_types=("Conv", "Bogus")))


def test_op_id_that_matches_nothing_is_named(qdq):
    with pytest.raises(ConfigError, match="99999"):
        convert(qdq(MODEL, VARIANT), ConvertConfig(scope=Scope(exclude_ids=(99999,))))


@pytest.fixture(scope="module")
def skipped_run(tmp_path_factory, qdq):
    """The CLI run with two convs skipped and --debug; returns (qdq path, int8 path, debug dir, ids)."""
    d = tmp_path_factory.mktemp("skip")
    q = d / "qdq.onnx"
    onnx.save(qdq(MODEL, VARIANT), q)
    convs = [node_id(n) for n in convert(qdq(MODEL, VARIANT)).model.graph if n.op_type == "Conv"]
    ids = (convs[1], convs[4])
    out, debug = d / "int8.onnx", d / "debug"
    rc = main(
        [
            "convert",
            "--quant-model-path",
            str(q),
            "--int8-model-save-path",
            str(out),
            "--op-ids-to-skip",
            ",".join(map(str, ids)),
            "--debug",
            str(debug),
        ]
    )
    assert rc == 0
    return q, out, debug, ids


def test_skipped_convs_keep_float_weights_and_the_model_still_agrees(skipped_run):
    q, out, _, ids = skipped_run
    saved = onnx.load(out)
    inits = {t.name: t for t in saved.graph.initializer}
    weight_types = {}
    for node in saved.graph.node:
        if node.domain == "int8kit" and node.op_type == "Conv":
            meta = {e.key: e.value for e in node.metadata_props}
            weight_types[int(meta[ID_KEY])] = inits[node.input[1]].data_type
    assert {i: weight_types[i] for i in ids} == dict.fromkeys(ids, onnx.TensorProto.FLOAT)
    others = {t for i, t in weight_types.items() if i not in ids}
    assert others == {onnx.TensorProto.INT8}
    x = eval_inputs()
    assert_agrees(run_int8kit(str(out), x), run_ort(q, x))


def test_debug_writes_one_dot_per_pass_with_ids_and_colours(skipped_run):
    _, _, debug, ids = skipped_run
    files = sorted(debug.glob("*.dot"))
    names = pass_names(conversion_passes(ConvertConfig()))
    assert [f.stem.split("_", 1)[1] for f in files] == names
    first, last = files[0].read_text(), files[-1].read_text()
    assert first.startswith("digraph")
    for i in ids:
        assert f'"#{i} Conv' in last
    assert INT8_COLOR in last and FP32_COLOR in last


def _cli_error(capsys, args: list[str]) -> str:
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_cli_errors_are_one_line_with_status_2(capsys, tmp_path, qdq):
    q = tmp_path / "qdq.onnx"
    onnx.save(qdq(MODEL, VARIANT), q)
    base = ["convert", "--quant-model-path", str(q), "--int8-model-save-path", str(tmp_path / "o.onnx")]
    assert "Bogus" in _cli_error(capsys, [*base, "--ops-to-quantize", "conv,Bogus"])
    assert "4242" in _cli_error(capsys, [*base, "--op-ids-to-skip", "4242"])
    missing = str(tmp_path / "missing.onnx")
    line = _cli_error(
        capsys, ["convert", "--quant-model-path", missing, "--int8-model-save-path", str(tmp_path / "o.onnx")]
    )
    assert "missing.onnx" in line
    assert not (tmp_path / "o.onnx").exists()


def test_ops_to_quantize_on_the_cli_limits_int8_to_those_kinds(tmp_path, qdq):
    q, out = tmp_path / "qdq.onnx", tmp_path / "int8.onnx"
    onnx.save(qdq(MODEL, VARIANT), q)
    assert (
        main(["convert", "--quant-model-path", str(q), "--int8-model-save-path", str(out), "--ops-to-quantize", "gemm"])
        == 0
    )
    saved = onnx.load(out)
    inits = {t.name: numpy_helper.to_array(t).dtype for t in saved.graph.initializer}
    kinds = {(n.op_type, str(inits[n.input[1]])) for n in saved.graph.node if n.domain == "int8kit"}
    assert kinds == {("Conv", "float32"), ("Dense", "int8")}
    assert Path(out).stat().st_size > 0


def test_ops_to_quantize_takes_the_onnx_op_types_quantize_takes():
    """One vocabulary: every op type `int8kit quantize --ops-to-quantize` takes is valid here; other names
    are refused naming them."""
    from int8kit.quantize.plan import SUPPORTED_OPS

    for op in SUPPORTED_OPS:
        ConvertConfig(scope=Scope(op_types=(op,)))
    with pytest.raises(ConfigError, match="Softmax"):
        ConvertConfig(scope=Scope(op_types=("Softmax",)))


def test_a_scope_rule_matching_no_node_is_an_error_naming_it(qdq):
    with pytest.raises(ConfigError, match="'Conv\\[depthwise\\]'"):
        convert(qdq(MODEL, VARIANT), ConvertConfig(scope=Scope(op_types=("Conv[depthwise]",))))
    with pytest.raises(ConfigError, match="node 'no_such_node'"):
        convert(qdq(MODEL, VARIANT), ConvertConfig(scope=Scope(exclude_nodes=("no_such_node",))))


def test_exclude_nodes_on_the_cli_keeps_that_node_fp32_with_the_reason(tmp_path, qdq):
    q, out, js = tmp_path / "qdq.onnx", tmp_path / "int8.onnx", tmp_path / "s.json"
    model = qdq(MODEL, VARIANT)
    onnx.save(model, q)
    name = next(n.name for n in convert(model).model.graph if n.op_type == "Conv")
    argv = ["convert", str(q), "-o", str(out), "--exclude-nodes", name, "--json", str(js)]
    assert main(argv) == 0
    saved = onnx.load(out)
    inits = {t.name: t.data_type for t in saved.graph.initializer}
    node = next(n for n in saved.graph.node if n.name == name)
    assert inits[node.input[1]] == onnx.TensorProto.FLOAT
    reasons = {op["name"]: op["reason"] for op in json.loads(js.read_text())["fp32_ops"]}
    assert reasons[name] == f"skipped by scope: node {name}"
