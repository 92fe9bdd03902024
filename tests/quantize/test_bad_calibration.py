"""quantize refuses calibration that would give a degenerate model, and never leaves a half-written output.

All-NaN or constant data, a tensor whose calibrated range is 0..0, integer pixels where normalised floats
are expected, and an output path that cannot be written are each one clear error (exit 2 from the CLI),
found before calibration where they can be.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.cli import main
from int8kit.errors import InputError
from int8kit.ir.save import save_model
from int8kit.quantize import QuantizeConfig, quantize_with_report

from ._nets import build_net, make_images

CONFIG = QuantizeConfig(num_samples=8, backend="onnxruntime")


def _cli(capsys, tmp_path, data: np.ndarray | None = None, output=None, model=None) -> tuple[int, list[str]]:
    model_path, data_path = tmp_path / "net.onnx", tmp_path / "calib.npy"
    onnx.save(model or build_net(), model_path)
    np.save(data_path, make_images(8) if data is None else data)
    output = tmp_path / "q.onnx" if output is None else output
    capsys.readouterr()
    argv = ["quantize", str(model_path), "--calib-data", str(data_path), "-o", str(output)]
    code = main([*argv, "--no-progress", "--backend", "onnxruntime"])
    return code, capsys.readouterr().err.strip().splitlines()


def _one_line(code: int, err: list[str]) -> str:
    assert code == 2 and len(err) == 1, err
    return err[0]


# -- data -----------------------------------------------------------------------------------------
def test_all_nan_data_is_refused(capsys, tmp_path):
    line = _one_line(*_cli(capsys, tmp_path, np.full((8, 3, 16, 16), np.nan, np.float32)))
    assert "calib.npy" in line and "no finite values" in line and "'input'" in line
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_constant_data_is_refused(capsys, tmp_path, value):
    line = _one_line(*_cli(capsys, tmp_path, np.full((8, 3, 16, 16), value, np.float32)))
    assert "calib.npy" in line and "constant" in line and f"{value:g}" in line
    assert not (tmp_path / "q.onnx").exists()


def _dead_relu_net() -> onnx.ModelProto:
    """input -> Conv(bias -1000) -> Relu ('dead': 0 for any sane input) -> Conv -> output."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (4, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(np.full(4, -1000.0, np.float32), "b0"),
        numpy_helper.from_array(rng.normal(0, 0.1, (2, 4, 1, 1)).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["dead"], name="relu0"),
        helper.make_node("Conv", ["dead", "w1"], ["y"], name="conv1"),
    ]
    graph = helper.make_graph(
        nodes,
        "dead",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_tensor_with_a_zero_range_is_named():
    model = _dead_relu_net()
    # independent check that the tensor really is 0 on this data
    import onnxruntime as ort

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    probe.graph.output.append(helper.make_tensor_value_info("dead", TensorProto.FLOAT, None))
    dead = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["dead"], {"input": make_images(8)}
    )[0]
    assert not dead.any()
    with pytest.raises(InputError) as info:
        quantize_with_report(model, make_images(8), CONFIG)
    assert "'dead'" in str(info.value) and "0..0" in str(info.value)


def test_cli_tensor_with_a_zero_range_is_one_line(capsys, tmp_path):
    line = _one_line(*_cli(capsys, tmp_path, model=_dead_relu_net()))
    assert "'dead'" in line and "0..0" in line
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_integer_pixels_are_refused_not_cast(capsys, tmp_path, dtype):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 3, 16, 16)).astype(dtype)
    line = _one_line(*_cli(capsys, tmp_path, pixels))
    assert "calib.npy" in line and np.dtype(dtype).name in line and "float32" in line
    with pytest.raises(InputError, match=np.dtype(dtype).name):
        quantize_with_report(build_net(), pixels, CONFIG)


def test_float64_data_is_converted_and_logged(caplog):
    images = make_images(8).astype(np.float64)
    with caplog.at_level(logging.INFO, logger="int8kit.quantize.samples"):
        result = quantize_with_report(build_net(), images, CONFIG)
    assert any("float64" in r.getMessage() and "float32" in r.getMessage() for r in caplog.records)
    want = quantize_with_report(build_net(), images.astype(np.float32), CONFIG)
    assert [t.qparams for t in result.tensors] == [t.qparams for t in want.tensors]


# -- output ---------------------------------------------------------------------------------------
@pytest.fixture
def no_calibration(monkeypatch):
    """Fail the test if calibration starts: output problems must be found before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("calibration ran before the output path was checked")

    monkeypatch.setattr("int8kit.quantize.api.calibrate", refuse)


def test_output_that_is_a_directory_is_refused_before_calibration(capsys, tmp_path, no_calibration):
    (tmp_path / "out").mkdir()
    line = _one_line(*_cli(capsys, tmp_path, output=tmp_path / "out"))
    assert str(tmp_path / "out") in line and "directory" in line


def test_output_under_a_file_is_refused_before_calibration(capsys, tmp_path, no_calibration):
    (tmp_path / "afile").write_text("x")
    line = _one_line(*_cli(capsys, tmp_path, output=tmp_path / "afile" / "q.onnx"))
    assert "afile" in line and "not a directory" in line


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, which no one (not even root) can write")
def test_unwritable_output_folder_is_refused_before_calibration(capsys, tmp_path, no_calibration):
    line = _one_line(*_cli(capsys, tmp_path, output="/proc/self/q.onnx"))
    assert "/proc/self" in line and "cannot write" in line


def test_failed_write_keeps_the_previous_model_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "q.onnx"
    path.write_bytes(b"previous model")
    model = build_net()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(Exception, match="No space left"):
        save_model(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]
    save_model(model, path)
    assert onnx.load(path) == model
