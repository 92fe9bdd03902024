"""`int8kit test --streams N`: same accuracy as one stream, images/s from the wall time, clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from int8kit.cli import main
from int8kit.data.seed_format import write_seed
from int8kit.models import zoo
from int8kit.runtime.predictor import Predictor


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streams")
    model = zoo.save("resnet_tiny", tmp / "tiny.onnx", size=16)
    x = np.random.default_rng(0).standard_normal((23, 3, 16, 16)).astype(np.float32)
    scores = Predictor(model, num_threads=1).run(x)
    labels = np.where(np.arange(23) % 3 == 0, scores.argmax(1), np.argsort(scores, 1)[:, 0])  # some right, some not
    return model, write_seed(tmp / "data.bin", x, labels), labels == scores.argmax(1), scores, labels


def run_test(model, data, tmp_path, *extra) -> dict:
    out = tmp_path / "r.json"
    args = ["test", str(model), "--data", str(data), "--batch-size", "5", "--no-progress", "--json", str(out)]
    assert main([*args, *extra]) == 0
    return json.loads(out.read_text())


def test_streams_give_the_same_accuracy_and_consistent_timings(files, tmp_path):
    model, data, right, scores, labels = files
    top5 = (np.sum(scores > scores[np.arange(len(labels)), labels][:, None], axis=1) < 5).mean()
    one = run_test(model, data, tmp_path)
    two = run_test(model, data, tmp_path, "--streams", "2")
    for r in (one, two):
        assert r["top1"] == pytest.approx(100 * right.mean())
        assert r["top5"] == pytest.approx(100 * top5)
        assert r["images"] == r["timed_images"] == 23 and r["iterations"] == 5
    assert two["fps"] == pytest.approx(23 / two["total_time_s"])
    assert two["batch_latency_ms"] == pytest.approx(two["total_time_s"] * 1000 / 5)
    assert two["p50_ms"] <= two["p90_ms"] <= two["p99_ms"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--streams", "0"], "streams must be at least 1"),
        (["--streams", "2", "--backend", "onnxruntime"], "int8kit backend only"),
    ],
)
def test_refusals_are_one_line(files, capsys, extra, message):
    model, data, *_ = files
    assert main(["test", str(model), "--data", str(data), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
