"""`int8kit demo` runs the whole workflow on Fashion-MNIST and its report matches a direct computation."""

import csv
from pathlib import Path

import numpy as np
import pytest

from int8kit.commands.demo import FASHION_MNIST as DEFAULT_ROOT

REPO = Path(__file__).resolve().parents[2]
needs_fashion_mnist = pytest.mark.skipif(not DEFAULT_ROOT.exists(), reason="needs apt package dataset-fashion-mnist")


@needs_fashion_mnist
def test_demo_reports_fp32_and_int8_accuracy(tmp_path, monkeypatch, capsys):
    """Run from a directory that is not the repository, with the default output and models folder."""
    from int8kit.cli import main
    from int8kit.data.open_data import open_dataset
    from int8kit.runtime.predictor import Predictor

    models = REPO / "examples" / "models"
    monkeypatch.chdir(tmp_path)
    argv = [
        "demo",
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
    assert "$ int8kit convert" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8kit-demo"]  # nothing else written
    tmp_path = tmp_path / "int8kit-demo"  # each step is shown as the command a user types
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


def test_demo_output_is_gitignored():
    """`git check-ignore` (the reference) agrees that the demo's default output folder is ignored."""
    import shutil
    import subprocess

    from int8kit.commands.demo import DEFAULT_OUTPUT

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a checkout")
    for path in (DEFAULT_OUTPUT / "report.csv", DEFAULT_OUTPUT / "fashion_mnist_resnet_int8.onnx"):
        done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False)
        assert done.returncode == 0, f"{path} is not ignored"
