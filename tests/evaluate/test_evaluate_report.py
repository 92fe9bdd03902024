"""The comparison table's numbers against hand computation from two TestResults."""

from __future__ import annotations

import csv

import pytest

from int8kit.evaluate.report import COLUMNS, Comparison, write_csv
from int8kit.evaluate.tester import TestConfig, TestResult


def result(top1, top5, fps, backend="onnxruntime"):
    config = TestConfig("m.onnx", "d.bin", batch_size=10, backend=backend)
    ms = 1000 / fps
    return TestResult(config, 100, 10, top1, top5, 10 * ms * 10 / 1000, 10 * ms, ms, fps, 1, 2, 3, {"cpu": "X"})


def test_row_values_and_format():
    row = Comparison("net", result(0.7078, 0.8950, 74.05), result(0.7074, 0.8960, 216.36, backend="int8kit"))
    values = dict(zip(COLUMNS, row.values(), strict=True))
    assert values["FP32 top-1"] == pytest.approx(70.78) and values["INT8 top-5"] == pytest.approx(89.60)
    assert values["top-1 diff"] == pytest.approx(70.74 - 70.78)
    assert values["top-5 diff"] == pytest.approx(89.60 - 89.50)
    assert values["INT8/FP32"] == pytest.approx(216.36 / 74.05)
    text = dict(zip(COLUMNS, row.formatted(), strict=True))
    assert text["top-1 diff"] == "-0.04" and text["top-5 diff"] == "+0.10" and text["INT8/FP32"] == "2.92"


def test_no_labels_shows_na(tmp_path):
    row = Comparison("npy", result(None, None, 10.0), result(None, None, 30.0))
    formatted = dict(zip(COLUMNS, row.formatted(), strict=True))
    assert formatted["FP32 top-1"] == "n/a" and formatted["top-1 diff"] == "n/a"
    assert formatted["INT8/FP32"] == "3.00"
    (line,) = csv.DictReader(write_csv([row], tmp_path / "r.csv").open())
    assert line["FP32 top-1"] == "" and float(line["INT8/FP32"]) == pytest.approx(3.0)
