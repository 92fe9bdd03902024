"""compare (evaluate/layer_error): per-layer SQNR lists every Conv/Dense and finds a corrupted layer."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from int8kit.cli import main
from int8kit.convert.pipeline import convert
from int8kit.evaluate.layer_error import compare_layers
from int8kit.ir.load import as_ir_model
from int8kit.ir.optimize import optimize_fp32
from int8kit.ir.save import save_model

from ._util import eval_inputs

MODEL = "resnet_tiny"


@pytest.fixture(scope="module")
def paths(tmp_path_factory, qdq, fp32):
    d = tmp_path_factory.mktemp("compare")
    onnx.save(fp32(MODEL), d / "fp32.onnx")
    save_model(convert(qdq(MODEL, "int8kit")).model, d / "int8.onnx")
    return d / "fp32.onnx", d / "int8.onnx"


def _batches():
    x = eval_inputs(n=32, seed=4)
    return [x[i : i + 16] for i in range(0, 32, 16)]


def test_every_conv_and_dense_is_listed_with_a_good_sqnr(paths, fp32):
    errors = compare_layers(*paths, _batches())
    fused = optimize_fp32(as_ir_model(fp32(MODEL)))
    expected = sorted(n.name for n in fused.graph if n.op_type in ("Conv", "Dense"))
    assert sorted(e.name for e in errors) == expected
    assert all(e.int8 for e in errors)
    assert [e.sqnr_db for e in errors] == sorted(e.sqnr_db for e in errors)  # worst first
    assert min(e.sqnr_db for e in errors) > 15, errors


def test_corrupted_layer_has_the_worst_sqnr(paths, tmp_path):
    fp32_path, int8_path = paths
    proto = onnx.load(int8_path)
    dense = next(n for n in proto.graph.node if n.domain == "int8kit" and n.op_type == "Dense")
    w = next(t for t in proto.graph.initializer if t.name == dense.input[1])
    rng = np.random.default_rng(0)
    corrupt = rng.integers(-127, 128, numpy_helper.to_array(w).shape).astype(np.int8)
    w.CopyFrom(numpy_helper.from_array(corrupt, w.name))
    bad = tmp_path / "corrupt.onnx"
    onnx.save(proto, bad)
    good = {e.name: e.sqnr_db for e in compare_layers(fp32_path, int8_path, _batches())}
    errors = compare_layers(fp32_path, bad, _batches())
    assert errors[0].name == dense.name and errors[0].sqnr_db < 3
    for e in errors[1:]:  # layers before it are untouched
        assert e.sqnr_db == pytest.approx(good[e.name])


def test_compare_cli_prints_every_layer(paths, tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, eval_inputs(n=8, seed=5))
    assert main(["compare", str(paths[0]), str(paths[1]), "--data", str(data), "--num-samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "SQNR" in out and out.count("INT8") >= 10
