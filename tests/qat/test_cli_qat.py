"""`int8kit qat` through cli.main on a labelled compact data file."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytest.importorskip("torch")

from int8kit.cli import main  # noqa: E402
from int8kit.data.compact_format import write_compact  # noqa: E402

from ._nets import MEAN, STD, build_net, make_images, make_pixels  # noqa: E402


def test_qat_command_trains_and_writes_a_qdq_model(tmp_path, capsys):
    model, train, test, out = (tmp_path / n for n in ("net.onnx", "train.bin", "test.bin", "net.qat.onnx"))
    onnx.save(build_net(), model)
    write_compact(train, *make_pixels(200, seed=1), MEAN, STD)
    test_pixels, test_labels = make_pixels(100, seed=2)
    write_compact(test, test_pixels, test_labels, MEAN, STD)
    argv = ["qat", str(model), "--data", str(train), "--eval-data", str(test), "-o", str(out)]
    argv += ["--steps", "6", "--batch-size", "32", "--calib-samples", "50", "--lr", "1e-3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "step 6/6" in text

    # The printed accuracy of the trained fake-quant model equals onnxruntime's on the written QDQ model
    # (up to at most one image on a rounding tie).
    after = float(re.search(r"after QAT: fake-quant top-1 ([\d.]+)%", text).group(1))
    x, _ = make_images(100, seed=2)
    qdq = onnx.load(out)
    logits = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    assert abs(100 * np.mean(logits.argmax(1) == test_labels) - after) <= 1.0
    assert any(p.key == "int8kit.qat.config" and '"steps": 6' in p.value for p in qdq.metadata_props)


def test_qat_command_refuses_unlabelled_data(tmp_path, capsys):
    model, data = tmp_path / "net.onnx", tmp_path / "images.npy"
    onnx.save(build_net(), model)
    np.save(data, make_images(10)[0])
    assert main(["qat", str(model), "--data", str(data), "-o", str(tmp_path / "o.onnx")]) == 2
    assert "images.npy" in capsys.readouterr().err
