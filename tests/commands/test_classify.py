"""`int8kit classify` (in-process): rows equal `preprocess` + `Predictor.run`, bad images, outputs."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from int8kit.cli import main

from ._classify_util import IMAGE_FLAGS, N_IMAGES, make_images, reference_scores, save_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classify")
    images = make_images(tmp / "imgs")
    model = save_model(tmp / "tiny.onnx")
    return tmp, images, model, reference_scores(tmp, model, images)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def classify(model: Path, source: Path, output: Path, *extra: str) -> int:
    args = ["classify", "--infer-model", str(model), "--input", str(source), "--output", str(output)]
    return main([*args, *IMAGE_FLAGS, "--workers", "1", "--batch-size", "7", *extra])


def assert_rows_match(rows, images, scores, k: int) -> None:
    assert [r["path"] for r in rows] == [str(p) for p in images]
    order = np.argsort(-scores, axis=1, kind="stable")
    for row, s, o in zip(rows, scores, order, strict=True):
        assert int(row["top1"]) == int(np.argmax(s))
        for i in range(k):
            assert int(row[f"top{i + 1}"]) == o[i]
            # batches of 7 run programs of their own shapes, each timing its FP32 layout policy at compile
            # (runtime.layouts): the reference's values up to float summation order
            assert float(row[f"top{i + 1}_score"]) == pytest.approx(float(s[o[i]]), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("streams", ["1", "2"])
def test_rows_equal_predictor_on_preprocess_output(setup, tmp_path, streams):
    _, images, model, scores = setup
    out = tmp_path / "preds.csv"
    assert classify(model, images[0].parent, out, "--top-k", "3", "--streams", streams) == 0
    rows = read_csv(out)
    assert len(rows) == N_IMAGES
    assert list(rows[0]) == ["path", "top1", "top1_score", "top2", "top2_score", "top3", "top3_score"]
    assert_rows_match(rows, images, scores, 3)


def test_parquet_holds_the_same_rows(setup, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _, images, model, scores = setup
    out = tmp_path / "preds.parquet"
    assert classify(model, images[0].parent, out, "--top-k", "2") == 0
    table = pq.read_table(out).to_pylist()
    assert_rows_match([{k: str(v) for k, v in r.items()} for r in table], images, scores, 2)


def test_parquet_without_pyarrow_is_a_clear_error(setup, tmp_path, monkeypatch, capsys):
    _, images, model, _ = setup
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "preds.parquet"
    assert classify(model, images[0].parent, out) == 2
    err = capsys.readouterr().err.strip()
    assert "pyarrow" in err and str(out) in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_list_file_with_labels_and_relative_paths(setup, tmp_path):
    _, images, model, scores = setup
    listing = images[0].parent / "some_list.txt"
    picked = [0, 5, 9]
    listing.write_text("\ufeff" + "".join(f"{images[i].name} {i}\n" for i in picked))
    out = tmp_path / "preds.csv"
    try:
        assert classify(model, listing, out) == 0
    finally:
        listing.unlink()
    assert_rows_match(read_csv(out), [images[i] for i in picked], scores[picked], 5)


def test_bad_images_reported_per_file_and_skipped(setup, tmp_path, capsys):
    _, images, model, scores = setup
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    missing = tmp_path / "missing.jpg"
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images[0]}\n{broken}\n{missing}\n{images[1]}\n")
    out = tmp_path / "preds.csv"
    assert classify(model, listing, out) == 0
    err = capsys.readouterr().err
    assert f"skipped {broken}: cannot decode" in err and f"skipped {missing}: file not found" in err
    assert_rows_match(read_csv(out), images[:2], scores[:2], 5)


def test_fail_on_bad_image_stops_and_writes_nothing(setup, tmp_path, capsys):
    _, images, model, _ = setup
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"garbage")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images[0]}\n{broken}\n")
    out = tmp_path / "out" / "preds.csv"
    assert classify(model, listing, out, "--fail-on-bad-image") == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and len(err.splitlines()) == 1
    assert not out.exists() and list(out.parent.iterdir()) == []  # no .part left either


@pytest.mark.parametrize(
    "output, message", [("preds.txt", "must end in .csv or .parquet"), ("preds.csv", "no such folder or list file")]
)
def test_bad_arguments_are_one_line_errors(setup, tmp_path, capsys, output, message):
    _, _, model, _ = setup
    assert classify(model, tmp_path / "nowhere", tmp_path / output) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_ray_address_without_ray_installed_is_a_clear_error(setup, tmp_path, monkeypatch, capsys):
    _, images, model, _ = setup
    monkeypatch.setitem(sys.modules, "ray", None)
    assert classify(model, images[0].parent, tmp_path / "p.csv", "--ray-address", "local") == 2
    err = capsys.readouterr().err.strip()
    assert "int8kit[ray]" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_ray_address_fails_fast(setup, tmp_path, capsys):
    pytest.importorskip("ray")
    import socket

    _, images, model, _ = setup
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
        assert classify(model, images[0].parent, tmp_path / "p.csv", "--ray-address", address) == 2
    err = capsys.readouterr().err.strip()
    assert f"no Ray cluster at {address}" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no .part file left
