"""The rendered text lines carry true labels: PaddleOCR's own classifier (FP32, onnxruntime) agrees with them.

A label list shifted by one, labels swapped, or a rotation other than 180 degrees would put the accuracy near
0% or 50%, far below the bar."""

from __future__ import annotations

import hashlib

import numpy as np
import ocr_classifier
import pytest
import text_lines

from int8kit.data.open_data import open_dataset
from int8kit.data.preprocess import PreprocessConfig, preprocess

ort = pytest.importorskip("onnxruntime")


def _ort_scores(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_rendered_labels_match_the_pretrained_classifier(fonts, ocr_model, tmp_path):
    lines = text_lines.render_set(tmp_path / "lines", 80, seed=5)
    config = PreprocessConfig(lines.folder, lines.label_list, tmp_path / "lines.bin", ocr_classifier.SPEC, "compact")
    out = preprocess(config).output_file
    data = open_dataset(out)
    assert data.image_shape == (3, 48, 192)
    assert list(data.labels) == list(lines.labels) == [i % 2 for i in range(80)]
    predicted = _ort_scores(ocr_model, data.batch(0, len(data))).argmax(1)
    accuracy = float(np.mean(predicted == data.labels))
    assert accuracy >= 0.9, f"FP32 accuracy {accuracy:.1%} on rendered lines: labels or rendering are wrong"
    # both classes are recognised, not one class predicted everywhere
    assert np.mean(predicted[data.labels == 0] == 0) >= 0.85 and np.mean(predicted[data.labels == 1] == 1) >= 0.85


def test_folding_keeps_the_model_function(fonts, ocr_model, tmp_path):
    lines = text_lines.render_set(tmp_path / "lines", 8, seed=9)
    from int8kit.data.preprocess import load_input

    x = np.stack([load_input(lines.folder / f"line_{i:05d}.png", ocr_classifier.SPEC) for i in range(8)])
    original = _ort_scores(ocr_classifier.model_path(), x)
    np.testing.assert_allclose(_ort_scores(ocr_model, x), original, rtol=1e-5, atol=1e-6)


def test_rendering_is_deterministic_per_seed(fonts, tmp_path):
    def digest(folder) -> str:
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("*.png")))).hexdigest()

    a = text_lines.render_set(tmp_path / "a", 6, seed=3)
    b = text_lines.render_set(tmp_path / "b", 6, seed=3)
    c = text_lines.render_set(tmp_path / "c", 6, seed=4)
    assert a.texts == b.texts and digest(a.folder) == digest(b.folder)
    assert a.texts != c.texts


def test_missing_fonts_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="fonts-dejavu-core"):
        text_lines.render_set(tmp_path / "x", 2, seed=0, font_dir=tmp_path)


def test_ci_installs_the_fonts_package():
    from pathlib import Path

    command = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"dpkg -s dataset-fashion-mnist {text_lines.FONTS_PACKAGE}" in command
    assert f"apt-get install -y dataset-fashion-mnist {text_lines.FONTS_PACKAGE}" in command
