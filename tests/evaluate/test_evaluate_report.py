"""The comparison table's numbers against hand computation from two TestResults; the plot's axes and title."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from int8kit.evaluate.report import COLUMNS, Comparison, accuracy_limits, plot, plot_title, write_csv
from int8kit.evaluate.tester import TestConfig, TestResult


def result(top1, top5, fps, backend="onnxruntime", cpu="X", batch=10, threads=1):
    config = TestConfig("m.onnx", "d.bin", batch_size=batch, num_threads=threads, backend=backend)
    ms = 1000 / fps
    return TestResult(config, 100, 10, top1, top5, 10 * ms * 10 / 1000, 10 * ms, ms, fps, 1, 2, 3, {"cpu": cpu})


def test_row_values_and_format():
    # PaddleSlim's published MobileNet-V1 row: accuracies are percent in TestResult already.
    row = Comparison("net", result(70.78, 89.50, 74.05), result(70.74, 89.60, 216.36, backend="int8kit"))
    values = dict(zip(COLUMNS, row.values(), strict=True))
    assert values["FP32 top-1"] == pytest.approx(70.78) and values["INT8 top-5"] == pytest.approx(89.60)
    assert values["top-1 diff"] == pytest.approx(70.74 - 70.78)
    assert values["top-5 diff"] == pytest.approx(89.60 - 89.50)
    assert values["INT8/FP32"] == pytest.approx(216.36 / 74.05)
    text = dict(zip(COLUMNS, row.formatted(), strict=True))
    assert text["top-1 diff"] == "-0.04" and text["top-5 diff"] == "+0.10" and text["INT8/FP32"] == "2.92"


def test_csv_is_rounded(tmp_path):
    # 9984 of 10000 right = 99.84 %: 100 * 0.9984 is 99.83999999999999 in floating point.
    fp32 = result(100 * 0.9984, 100 * 0.99991, 1234.5678)
    int8 = result(100 * 0.998, 100 * 0.99993, 2469.1357)
    (line,) = csv.DictReader(write_csv([Comparison("n", fp32, int8)], tmp_path / "r.csv").open())
    assert line["FP32 top-1"] == "99.84" and line["INT8 top-1"] == "99.8" and line["top-1 diff"] == "-0.04"
    assert line["FP32 img/s"] == "1234.6" and line["INT8 img/s"] == "2469.1"
    assert line["INT8/FP32"] == "2.0"
    for column in COLUMNS[1:]:  # never more digits than the rounding allows
        assert len(line[column].split(".")[-1]) <= 2


def test_no_labels_shows_na(tmp_path):
    row = Comparison("npy", result(None, None, 10.0), result(None, None, 30.0))
    formatted = dict(zip(COLUMNS, row.formatted(), strict=True))
    assert formatted["FP32 top-1"] == "n/a" and formatted["top-1 diff"] == "n/a"
    assert formatted["INT8/FP32"] == "3.00"
    (line,) = csv.DictReader(write_csv([row], tmp_path / "r.csv").open())
    assert line["FP32 top-1"] == "" and float(line["INT8/FP32"]) == pytest.approx(3.0)


def test_accuracy_axis_is_zoomed_and_never_negative():
    lo, hi = accuracy_limits([92.20, 92.16])
    assert 0 < lo < 92.16 and 92.20 < hi <= 100
    assert (92.20 - 92.16) / (hi - lo) > 0.2  # a 0.04-point change fills a fifth of the axis, not 0.04 %
    assert accuracy_limits([0.0, 0.0])[0] == 0.0 and accuracy_limits([0.0, 0.0])[1] > 0
    assert accuracy_limits([100.0, 99.9])[0] >= 0
    assert accuracy_limits([]) == (0.0, 100.0)


def test_title_names_batch_threads_and_cpu():
    c = Comparison(
        "n",
        result(90, 99, 10, cpu="AMD EPYC 9B14", batch=50, threads=2),
        result(90, 99, 20, cpu="AMD EPYC 9B14", batch=50, threads=2),
    )
    assert plot_title([c]) == "FP32 vs INT8: batch 50, 2 thread(s), AMD EPYC 9B14"


def _axes_pixels(png):
    """Columns/rows of the image that are not white, to check the file is a drawn chart."""
    from PIL import Image

    with Image.open(png) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    return np.count_nonzero((rgb < 250).any(axis=2))


@pytest.mark.parametrize(
    "accuracies",
    [((92.20, 92.16), (91.60, 91.55)), ((0.0, 0.0), (0.0, 0.0)), ((None, None), (None, None))],
    ids=["close", "zero", "no-labels"],
)
def test_plot_draws_zoomed_panel(tmp_path, accuracies):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    rows = [
        Comparison(
            name, result(a, 99.0 if a is not None else None, 100.0), result(b, 99.0 if b is not None else None, 250.0)
        )
        for name, (a, b) in zip(("resnet", "mobilenetv2"), accuracies, strict=True)
    ]
    captured = []
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        captured.append(fig)
        return original(fig, *args, **kwargs)

    Figure.savefig = spy
    try:
        png = plot(rows, tmp_path / "p.png")
    finally:
        Figure.savefig = original
    assert _axes_pixels(png) > 1000
    fig = captured[0]
    acc_ax, fps_ax = fig.axes
    bottom, top = acc_ax.get_ylim()
    assert bottom >= 0 and fps_ax.get_ylim()[0] >= 0
    texts = [t.get_text() for t in acc_ax.texts]
    known = [v for pair in accuracies for v in pair if v is not None]
    if known:
        assert bottom <= min(known) and top >= max(known)
        for value in known:  # every value is written on its bar
            assert any(t.startswith(f"{value:.2f}") for t in texts)
    if known and max(known) > 0:
        assert bottom > 80  # zoomed, not 0..100
    assert fig._suptitle.get_text() == "FP32 vs INT8: batch 10, 1 thread(s), X"
    assert any(t.get_text().endswith("2.50x") for t in fps_ax.texts)
