"""CLI round trip: Pillow images -> `preprocess` -> seed bytes -> `test` / `report`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from int8kit.cli import main

MEAN = np.array([0.485, 0.456, 0.406]).reshape((3, 1, 1))
STD = np.array([0.229, 0.224, 0.225]).reshape((3, 1, 1))
DIM, RESIZE, CLASSES = 16, 20, 6


def seed_reference(path: Path) -> np.ndarray:
    """The seed script's steps, written out independently of int8kit.data."""
    img = Image.open(path)
    percent = float(RESIZE) / min(img.size)
    img = img.resize((int(round(img.size[0] * percent)), int(round(img.size[1] * percent))), Image.LANCZOS)
    w, h = img.size
    img = img.crop(((w - DIM) // 2, (h - DIM) // 2, (w - DIM) // 2 + DIM, (h - DIM) // 2 + DIM))
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.array(img).astype("float32").transpose((2, 0, 1)) / 255
    arr -= MEAN
    arr /= STD
    return arr


def tiny_model(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "B"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, DIM, DIM])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES])],
        [
            numpy_helper.from_array(rng.normal(size=(3, CLASSES)).astype(np.float32) * 5, "W"),
            numpy_helper.from_array(rng.normal(size=(CLASSES,)).astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def direct_accuracy(model: Path, images: np.ndarray, labels: np.ndarray, k: int) -> float:
    import onnxruntime as ort

    scores = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": images})[0]
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([label in row for row, label in zip(top, labels, strict=True)]))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(11)
    lines, names = [], []
    for i in range(13):
        size = (int(rng.integers(18, 40)), int(rng.integers(18, 40)))
        mode = ["RGB", "L", "RGBA"][i % 3]
        shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
        name = f"cls{i % 4}/img{i}.{'jpg' if mode == 'RGB' else 'png'}"
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(folder / name)
        label = int(rng.integers(0, CLASSES))
        lines.append(f"{name} {label}\n")
        names.append((name, label))
    (folder / "val_list.txt").write_text("".join(lines))
    return folder, names


@pytest.mark.parametrize("backend", ["onnxruntime", "int8kit"])
def test_preprocess_then_test(images, tmp_path, capsys, backend):
    if backend == "int8kit":
        pytest.importorskip("int8kit.runtime.predictor")
    folder, names = images
    out = tmp_path / "val.bin"
    args = ["preprocess", "--local", "--data-dir", str(folder), "--output-file", str(out)]
    assert main([*args, "--data-dim", str(DIM), "--resize-size", str(RESIZE), "--workers", "1"]) == 0
    assert "wrote 13 images of 3x16x16" in capsys.readouterr().out

    raw = out.read_bytes()
    n = len(names)
    assert np.frombuffer(raw[:8], "<i8")[0] == n
    floats = np.frombuffer(raw[8 : 8 + n * 3 * DIM * DIM * 4], "<f4").reshape(n, 3, DIM, DIM)
    expected = np.stack([seed_reference(folder / name) for name, _ in names])
    np.testing.assert_allclose(floats, expected, rtol=0, atol=1e-6)
    labels = np.array([label for _, label in names])
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n * 3 * DIM * DIM * 4 :], "<i8"), labels)

    model = tiny_model(tmp_path / "m.onnx", seed=1)
    report = tmp_path / "r.json"
    argv = ["test", "--infer-model", str(model), "--infer-data", str(out), "--batch-size", "5"]
    assert main([*argv, "--backend", backend, "--json", str(report)]) == 0
    text = capsys.readouterr().out
    record = json.loads(report.read_text())
    top1 = direct_accuracy(model, expected, labels, 1)
    assert record["top1"] == pytest.approx(100 * top1, abs=1e-9)  # percent, as everywhere
    assert record["top5"] == pytest.approx(100 * direct_accuracy(model, expected, labels, 5), abs=1e-9)
    assert record["images"] == 13 and record["iterations"] == 3
    assert f"{100 * top1:.2f}" in text and "batch latency" in text and "p99" in text
    assert record["environment"]["cpu"] and record["config"]["backend"] == backend


def test_compact_preprocess_same_accuracy(images, tmp_path, capsys):
    folder, names = images
    out = tmp_path / "val.i8k"
    common = [
        "--data-dir",
        str(folder),
        "--data-dim",
        str(DIM),
        "--resize-size",
        str(RESIZE),
        "--workers",
        "2",
    ]
    assert main(["preprocess", *common, "--output-file", str(out), "--format", "compact"]) == 0
    model = tiny_model(tmp_path / "m.onnx", seed=2)
    report = tmp_path / "r.json"
    argv = ["test", "--infer-model", str(model), "--infer-data", str(out), "--backend", "onnxruntime"]
    assert main([*argv, "--json", str(report)]) == 0
    expected = np.stack([seed_reference(folder / name) for name, _ in names])
    labels = np.array([label for _, label in names])
    assert json.loads(report.read_text())["top1"] == pytest.approx(100 * direct_accuracy(model, expected, labels, 1))


def test_preprocess_reports_bad_images(images, tmp_path, capsys):
    folder, _ = images
    (tmp_path / "list.txt").write_text("cls0/img0.jpg 1\ncls0/nope.jpg 2\n")
    argv = ["preprocess", "--data-dir", str(folder), "--label-list", str(tmp_path / "list.txt")]
    out = tmp_path / "o.bin"
    assert main([*argv, "--output-file", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "list.txt:2" in err and not out.exists()
    assert main([*argv, "--output-file", str(out), "--workers", "1", "--skip-bad"]) == 0
    assert "left out 1 bad image" in capsys.readouterr().err and out.exists()


def test_test_reports_truncated_file(tmp_path, capsys):
    data = tmp_path / "d.bin"
    data.write_bytes(np.int64(4).tobytes() + b"\0" * 100)
    model = tiny_model(tmp_path / "m.onnx", seed=0)
    assert main(["test", "--infer-model", str(model), "--infer-data", str(data), "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert "d.bin" in err and "not a seed data file" in err


def test_report_table_csv_and_plot(images, tmp_path, capsys):
    folder, names = images
    data = tmp_path / "val.bin"
    common = [
        "--data-dir",
        str(folder),
        "--data-dim",
        str(DIM),
        "--resize-size",
        str(RESIZE),
        "--workers",
        "1",
    ]
    assert main(["preprocess", *common, "--output-file", str(data)]) == 0
    fp32, int8 = tiny_model(tmp_path / "a.onnx", seed=3), tiny_model(tmp_path / "b.onnx", seed=4)
    csv_path, png, js = tmp_path / "r.csv", tmp_path / "r.png", tmp_path / "r.json"
    argv = [
        "report",
        "--pair",
        "tiny",
        str(fp32),
        str(int8),
        "--infer-data",
        str(data),
        "--backend",
        "onnxruntime",
    ]
    assert main([*argv, "--csv", str(csv_path), "--plot", str(png), "--json", str(js), "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "INT8/FP32" in out and "tiny" in out

    expected = np.stack([seed_reference(folder / name) for name, _ in names])
    labels = np.array([label for _, label in names])
    (row,) = list(csv.DictReader(csv_path.open()))
    fp32_top1, int8_top1 = (100 * direct_accuracy(m, expected, labels, 1) for m in (fp32, int8))
    assert float(row["FP32 top-1"]) == pytest.approx(fp32_top1, abs=0.005)  # rounded to 2 decimals
    assert float(row["INT8 top-1"]) == pytest.approx(int8_top1, abs=0.005)
    assert float(row["top-1 diff"]) == pytest.approx(int8_top1 - fp32_top1, abs=0.011)
    results = json.loads(js.read_text())[0]
    assert row["FP32 backend"] == row["INT8 backend"] == "onnxruntime" and row["images"] == "13"
    assert float(row["INT8/FP32"]) == pytest.approx(results["int8"]["fps"] / results["fp32"]["fps"], abs=0.005)
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 300


def test_report_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = [
        "report",
        "--pair",
        "x",
        "a.onnx",
        "b.onnx",
        "--infer-data",
        "d.bin",
        "--plot",
        str(tmp_path / "p.png"),
    ]
    assert main(argv) == 2
    assert "needs matplotlib" in capsys.readouterr().err
