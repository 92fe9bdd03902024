"""`int8kit demo` runs the whole workflow on Fashion-MNIST and its report matches a direct computation."""

import csv
from pathlib import Path

import numpy as np
import pytest

from int8kit.examples.fashion_mnist import DEFAULT_ROOT

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not DEFAULT_ROOT.exists(), reason="needs apt package dataset-fashion-mnist")


def test_demo_reports_fp32_and_int8_accuracy(tmp_path, capsys):
    from int8kit.cli import main
    from int8kit.data.open_data import open_dataset
    from int8kit.runtime.predictor import Predictor

    models = REPO / "examples" / "models"
    argv = [
        "demo",
        "--workdir",
        str(tmp_path),
        "--models-dir",
        str(models),
        "--models",
        "fashion_mnist_resnet",
        "--limit",
        "300",
        "--calib-images",
        "64",
        "--num-threads",
        "1",
    ]
    assert main(argv) == 0
    assert "$ int8kit convert" in capsys.readouterr().out  # each step is shown as the command a user types
    rows = list(csv.DictReader((tmp_path / "report.csv").read_text().splitlines()))
    assert len(rows) == 1 and (tmp_path / "report.png").stat().st_size > 0
    data = open_dataset(tmp_path / "test.bin")
    x, y = data.batch(0, len(data)), np.asarray(data.labels)
    for column, model in (
        ("FP32 top-1", models / "fashion_mnist_resnet.onnx"),
        ("INT8 top-1", tmp_path / "fashion_mnist_resnet_int8.onnx"),
    ):
        direct = 100 * np.mean(Predictor(model, num_threads=1).run(x).argmax(1) == y)
        assert float(rows[0][column]) == pytest.approx(direct, abs=0.01)
