"""`int8kit convert`, `test` and `quantize` take a Paddle model directory where they take an ONNX file."""

from __future__ import annotations

import json

import numpy as np
from paddle_fixtures import MODELS, cosine, images, program, reference

from int8kit.cli import main
from int8kit.data.compact_format import write_compact
from int8kit.runtime.predictor import Predictor


def _data(tmp_path):
    ref = reference()
    path = tmp_path / "fmnist.compact"
    write_compact(path, ref["images"][:, None], ref["labels"], (float(ref["mean"]),), (float(ref["std"]),))
    return path


def _paddle_top1(key: str) -> float:
    ref = reference()
    return float((ref[key].argmax(1) == ref["labels"]).mean() * 100)


def test_convert_a_paddle_fake_quant_directory_like_save_quant_model(tmp_path, capsys):
    out = tmp_path / "int8"
    argv = ["convert", "--quant-model-path", str(MODELS / "resnet_ptq"), "--int8-model-save-path", str(out)]
    assert main(argv) == 0
    written = out / "resnet_ptq_int8.onnx"
    assert written.is_file() and "wrote" in capsys.readouterr().out
    logits = Predictor(written).run(images())
    assert cosine(logits, reference()["resnet_ptq"]).min() >= 0.99


def test_test_command_on_a_paddle_fp32_directory(tmp_path):
    record = tmp_path / "result.json"
    argv = ["test", "--infer-model", str(MODELS / "mbv2_fp32"), "--infer-data", str(_data(tmp_path))]
    assert main([*argv, "--batch-size", "50", "--no-progress", "--json", str(record)]) == 0
    top1 = json.loads(record.read_text())["top1"]
    assert abs(top1 - _paddle_top1("mbv2_fp32")) < 1e-6


def test_quantize_then_convert_a_paddle_fp32_directory(tmp_path):
    data = _data(tmp_path)
    qdq, int8 = tmp_path / "resnet_qdq.onnx", tmp_path / "resnet_int8.onnx"
    assert main(["quantize", str(MODELS / "resnet_fp32"), "--data", str(data), "-o", str(qdq), "--no-progress"]) == 0
    assert main(["convert", str(qdq), "-o", str(int8)]) == 0
    logits = Predictor(int8).run(images())
    top1 = float((logits.argmax(1) == reference()["labels"]).mean() * 100)
    assert abs(top1 - _paddle_top1("resnet_fp32")) <= 2.0
    assert cosine(logits, reference()["resnet_fp32"]).mean() >= 0.99


def test_unsupported_op_is_one_line_and_exit_2(tmp_path, capsys):
    model = tmp_path / "m"
    model.mkdir()
    ops = [
        ("feed", {"X": ["feed"]}, {"Out": ["x"]}, {"col": 0}),
        ("grid_sampler", {"X": ["x"], "Grid": ["x"]}, {"Output": ["warped"]}, {}),
        ("fetch", {"X": ["warped"]}, {"Out": ["fetch"]}, {}),
    ]
    (model / "__model__").write_bytes(program(ops, {"x": ([-1, 1, 4, 4], False), "warped": ([-1, 1, 4, 4], False)}))
    (model / "__params__").write_bytes(b"")
    out = tmp_path / "out.onnx"
    assert main(["convert", str(model), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'grid_sampler'" in err and "'warped'" in err
    assert not out.exists()
    assert np.isfinite(images()).all()
