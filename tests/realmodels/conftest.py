"""The real-model tests import the package-free helpers of examples/realmodels and skip, saying why, when an
optional source (the rapidocr-onnxruntime or foolbox wheel, Debian's fonts-dejavu-core) is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REALMODELS = Path(__file__).resolve().parents[2] / "examples" / "realmodels"
if str(REALMODELS) not in sys.path:
    sys.path.insert(0, str(REALMODELS))

import ocr_classifier  # noqa: E402
import text_lines  # noqa: E402


@pytest.fixture(scope="session")
def fonts() -> None:
    missing = text_lines.missing_fonts()
    if missing:
        pytest.skip(f"{missing[0]} not found: apt-get install {text_lines.FONTS_PACKAGE}")


@pytest.fixture(scope="session")
def ocr_model(tmp_path_factory) -> Path:
    """The wheel's direction classifier with its constant Reshapes folded (what the accuracy table runs)."""
    try:
        path = ocr_classifier.model_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return ocr_classifier.fold_constant_reshapes(path, tmp_path_factory.mktemp("ocr") / "cls.onnx")[0]
