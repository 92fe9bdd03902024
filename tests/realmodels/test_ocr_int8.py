"""End to end on a real Paddle-trained model: rendered lines -> preprocess -> quantize -> convert -> Predictor.

INT8 must agree with FP32 (onnxruntime) on nearly every line and keep the FP32 accuracy within a few lines."""

from __future__ import annotations

import numpy as np
import ocr_classifier
import pytest
import text_lines

import int8kit
from int8kit.data.open_data import open_dataset
from int8kit.data.preprocess import PreprocessConfig, preprocess

ort = pytest.importorskip("onnxruntime")


def _data(tmp_path, name: str, count: int, seed: int):
    lines = text_lines.render_set(tmp_path / name, count, seed)
    config = PreprocessConfig(lines.folder, lines.label_list, tmp_path / f"{name}.bin", ocr_classifier.SPEC, "compact")
    return preprocess(config).output_file


def test_int8_direction_classifier_agrees_with_fp32(fonts, ocr_model, tmp_path):
    calib = _data(tmp_path, "calib", 32, seed=21)
    evaluation = open_dataset(_data(tmp_path, "eval", 60, seed=22))
    x, labels = evaluation.batch(0, len(evaluation)), evaluation.labels
    qdq = int8kit.quantize_model(str(ocr_model), str(calib), int8kit.QuantizeConfig(method="mse", num_samples=32))
    int8_path = tmp_path / "cls_int8.onnx"
    int8kit.save_model(int8kit.convert_model(qdq), int8_path)
    int8 = int8kit.Predictor(str(int8_path), num_threads=2).run(x)
    session = ort.InferenceSession(str(ocr_model), providers=["CPUExecutionProvider"])
    fp32 = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert int8.shape == fp32.shape == (60, 2)
    agreement = float(np.mean(int8.argmax(1) == fp32.argmax(1)))
    assert agreement >= 0.95, f"INT8 top-1 agrees with FP32 on {agreement:.1%} of the lines"
    fp32_acc, int8_acc = float(np.mean(fp32.argmax(1) == labels)), float(np.mean(int8.argmax(1) == labels))
    assert fp32_acc >= 0.9 and int8_acc >= fp32_acc - 0.05
    np.testing.assert_allclose(int8.sum(1), 1.0, atol=1e-3)  # the softmax head survives conversion
