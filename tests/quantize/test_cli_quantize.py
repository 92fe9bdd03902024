"""`int8kit quantize` end to end through cli.main."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from int8kit.cli import main

from ._nets import build_net, make_images


def _files(tmp_path, images=None):
    model, data = tmp_path / "net.onnx", tmp_path / "calib.npy"
    onnx.save(build_net(), model)
    np.save(data, make_images(20) if images is None else images)
    return model, data


def test_quantize_command_writes_a_runnable_qdq_model(tmp_path, capsys):
    model, data = _files(tmp_path)
    out = tmp_path / "net.qdq.onnx"
    argv = ["quantize", str(model), "--calib-data", str(data), "--output", str(out)]
    argv += ["--method", "percentile", "--num-samples", "12", "--batch-size", "5", "--no-progress"]
    argv += ["--backend", "onnxruntime", "--exclude-nodes", "conv1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    qdq = onnx.load(out)
    qlinear = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear"]
    zps = {t.name: t.data_type for t in qdq.graph.initializer}
    u8 = sum(zps[n.input[2]] == onnx.TensorProto.UINT8 for n in qlinear)
    values = {t.name: onnx.numpy_helper.to_array(t) for t in qdq.graph.initializer}
    with_zp = sum(int(values[n.input[2]]) != 0 for n in qlinear)
    assert f"{len(qlinear)} tensors calibrated ({u8} u8, {len(qlinear) - u8} s8, {with_zp} with a zero point)" in text
    assert "1 excluded" in text and "conv0.relu" in text
    x = make_images(3, seed=9)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert y.shape == (3, 10)


def test_no_bias_correction_keeps_the_biases_as_trained(tmp_path):
    """--no-bias-correction: conv0's bias is BatchNorm's fold, beta - mean * gamma / sqrt(var + eps), computed
    here by hand; by default bias correction moves it."""
    model, data = _files(tmp_path)
    init = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in onnx.load(model).graph.initializer}
    folded = init["conv0.beta"] - init["conv0.mean"] * init["conv0.gamma"] / np.sqrt(init["conv0.var"] + 1e-5)
    biases = {}
    for flag in ([], ["--no-bias-correction"]):
        out = tmp_path / f"q{len(flag)}.onnx"
        assert main(["quantize", str(model), "--calib-data", str(data), "-o", str(out), "--no-progress", *flag]) == 0
        qdq = onnx.load(out)
        values = {t.name: onnx.numpy_helper.to_array(t) for t in qdq.graph.initializer}
        conv0 = next(n for n in qdq.graph.node if n.op_type == "Conv" and n.name.startswith("conv0"))
        biases[bool(flag)] = values[conv0.input[2]]
    np.testing.assert_allclose(biases[True], folded, rtol=1e-5, atol=1e-6)
    assert not np.allclose(biases[False], folded, rtol=1e-5, atol=1e-6)


def test_quantize_command_reports_bad_data_shape(tmp_path, capsys):
    model, data = _files(tmp_path, images=np.zeros((4, 1, 16, 16), np.float32))
    out = tmp_path / "q.onnx"
    argv = ["quantize", str(model), "--calib-data", str(data), "-o", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "'input'" in err and "(1, 16, 16)" in err
    assert not out.exists()
