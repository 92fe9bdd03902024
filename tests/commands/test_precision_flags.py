"""`test --precision`, `benchmark --precision` and `info`'s bf16 line: what ran is printed and in the JSON."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from int8kit.cli import main
from int8kit.runtime.precision import bf16_supported
from tests.runtime.test_bf16 import small_cnn

EXPECTED = "bf16" if bf16_supported() else "fp32"  # bf16 falls back to FP32 (with a warning) without kernels


@pytest.fixture()
def files(tmp_path):
    model = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(emulate=False), model)
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).standard_normal((8, 8, 12, 12)).astype(np.float32))
    return model, data


def test_test_runs_bf16_and_says_so(files, tmp_path, capsys):
    model, data = files
    out = tmp_path / "r.json"
    argv = ["test", str(model), "--data", str(data), "--batch-size", "4", "--no-progress", "--json", str(out)]
    assert main([*argv, "--precision", "bf16"]) == 0
    assert f"precision: {EXPECTED}" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["precision"] == EXPECTED and record["config"]["precision"] == "bf16"
    assert main(argv) == 0
    assert json.loads(out.read_text())["precision"] == "fp32"


def test_bf16_on_onnxruntime_is_refused(files, capsys):
    model, data = files
    argv = ["test", str(model), "--data", str(data), "--backend", "onnxruntime", "--precision", "bf16"]
    assert main(argv) == 2
    assert "int8kit backend only" in capsys.readouterr().err


def test_benchmark_precision(files, tmp_path, capsys):
    model, _ = files
    out = tmp_path / "b.json"
    argv = ["benchmark", str(model), "--batch-size", "2", "--niter", "3", "--mode", "latency", "--no-progress"]
    assert main([*argv, "--precision", "bf16", "--json", str(out)]) == 0
    assert f"precision {EXPECTED}" in capsys.readouterr().out
    assert json.loads(out.read_text())["precision"] == EXPECTED


def test_info_says_whether_bf16_kernels_exist(capsys):
    assert main(["info"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("bf16 kernels:"))
    assert line.startswith("bf16 kernels: available" if bf16_supported() else "bf16 kernels: not available")
