"""Bad inputs each give one clear DataError naming the file or line; no half-written output is left."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from int8kit.data import ImageSpec, SeedReader, open_dataset, write_compact, write_seed
from int8kit.data.label_list import parse_label_list
from int8kit.data.preprocess import PreprocessConfig, preprocess
from int8kit.errors import ConfigError, DataError

SPEC = ImageSpec(data_dim=8, resize_size=10)


def folder_with(tmp_path: Path, names: list[str]) -> Path:
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(tmp_path / name)
    return tmp_path


def run(tmp_path: Path, lines: str, **kw) -> tuple[Path, object]:
    (tmp_path / "list.txt").write_text(lines)
    out = tmp_path / "out" / "val.bin"
    return out, preprocess(PreprocessConfig(tmp_path, tmp_path / "list.txt", out, spec=SPEC, workers=1, **kw))


def assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.glob("*.part"))


def test_missing_and_corrupt_images_are_listed(tmp_path):
    folder_with(tmp_path, ["good.png", "good2.jpg"])
    (tmp_path / "corrupt.jpg").write_bytes((tmp_path / "good2.jpg").read_bytes()[:200])
    (tmp_path / "noise.jpg").write_bytes(b"not an image at all")
    lines = "good.png 1\nmissing.jpg 2\ncorrupt.jpg 3\nnoise.jpg 4\ngood2.jpg 5\n"
    with pytest.raises(DataError) as info:
        run(tmp_path, lines)
    msg = str(info.value)
    assert "3 of 5 images" in msg
    for name, line in [("missing.jpg", 2), ("corrupt.jpg", 3), ("noise.jpg", 4)]:
        assert f"{tmp_path / name}" in msg and f"list.txt:{line}" in msg
    assert "good.png" not in msg and "not found" in msg
    assert_no_output(tmp_path / "out" / "val.bin")


def test_skip_bad_writes_only_good_images(tmp_path):
    folder_with(tmp_path, ["good.png", "good2.png"])
    out, result = run(tmp_path, "good.png 1\nmissing.jpg 2\ngood2.png 5\n", skip_bad=True)
    assert result.written == 2 and [b.line for b in result.dropped] == [2]
    reader = open_dataset(out)
    assert len(reader) == 2
    np.testing.assert_array_equal(reader.labels, [1, 5])


def test_all_bad_with_skip_bad_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no image could be read"):
        run(tmp_path, "missing.jpg 2\n", skip_bad=True)
    assert_no_output(tmp_path / "out" / "val.bin")


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a.png 1\nb.png\n", 2, "expected 'relative/path label'"),
        ("a.png 1\n\nb.png x1\n", 3, "not an integer"),
        ("a.png -4\n", 1, "negative"),
    ],
)
def test_wrong_label_line_names_line(tmp_path, text, line, what):
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(DataError) as info:
        parse_label_list(tmp_path / "list.txt")
    assert f"list.txt:{line}:" in str(info.value) and what in str(info.value)


def test_label_list_allows_spaces_and_comments(tmp_path):
    (tmp_path / "list.txt").write_text("# header\nmy dir/a b.png 3\n\n")
    (entry,) = parse_label_list(tmp_path / "list.txt")
    assert (entry.path, entry.label, entry.line) == ("my dir/a b.png", 3, 2)


def test_missing_label_list(tmp_path):
    with pytest.raises(DataError, match="label list not found"):
        parse_label_list(tmp_path / "nope.txt")


def seed_file(tmp_path: Path, n: int = 5, dim: int = 6) -> Path:
    rng = np.random.default_rng(1)
    return write_seed(tmp_path / "d.bin", rng.normal(size=(n, 3, dim, dim)), rng.integers(0, 9, n))


def test_truncated_seed_file(tmp_path):
    path = seed_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-8])
    with pytest.raises(DataError, match=r"d\.bin.*N=5"):
        open_dataset(path)
    path.write_bytes(data[:4])
    with pytest.raises(DataError, match=r"d\.bin.*too short"):
        open_dataset(path)


def test_seed_file_of_another_size(tmp_path):
    path = seed_file(tmp_path)
    with pytest.raises(DataError, match=r"d\.bin.*must be 8 \+|must be \d+ bytes"):
        SeedReader(path, channels=3, dim=7)
    # a size that divides by N but is no CxDxD float image
    path.write_bytes(np.int64(2).tobytes() + b"\0" * (2 * (3 * 5 * 6 * 4 + 8)))
    with pytest.raises(DataError, match=r"d\.bin.*not a seed data file"):
        open_dataset(path)
    path.write_bytes(np.int64(-3).tobytes() + b"\0" * 64)
    with pytest.raises(DataError, match=r"d\.bin.*-3 images"):
        open_dataset(path)


def test_seed_reader_derives_shape(tmp_path):
    path = seed_file(tmp_path, n=3, dim=5)
    reader = open_dataset(path)
    assert reader.image_shape == (3, 5, 5) and len(reader) == 3


def test_truncated_compact_file(tmp_path):
    rng = np.random.default_rng(2)
    path = write_compact(
        tmp_path / "c.bin", rng.integers(0, 255, (3, 1, 4, 4), dtype=np.uint8), [1, 2, 3], (0.5,), (0.5,)
    )
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(DataError, match=r"c\.bin.*N=3.*truncated"):
        open_dataset(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(DataError, match=r"c\.bin.*too long"):
        open_dataset(path)


def test_missing_data_file(tmp_path):
    with pytest.raises(DataError, match=r"x\.bin: data file not found"):
        open_dataset(tmp_path / "x.bin")


def test_npy_images_without_labels(tmp_path):
    arr = np.random.default_rng(4).normal(size=(4, 3, 5, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    reader = open_dataset(tmp_path / "a.npy")
    assert reader.labels is None and len(reader) == 4
    np.testing.assert_array_equal(reader.batch(1, 2), arr[1:3])


def test_bad_spec():
    with pytest.raises(ConfigError, match="mean/std need 1"):
        ImageSpec(grayscale=True)
    with pytest.raises(ConfigError, match="smaller than the crop"):
        ImageSpec(data_dim=224, resize_size=200)


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    folder_with(tmp_path, ["a.png", "b.png"])
    calls = []

    def stop(done, total):
        calls.append(done)
        raise KeyboardInterrupt

    (tmp_path / "list.txt").write_text("a.png 1\nb.png 2\n")
    out = tmp_path / "out" / "val.bin"
    config = PreprocessConfig(tmp_path, tmp_path / "list.txt", out, spec=SPEC, workers=1, chunk_size=1)
    with pytest.raises(KeyboardInterrupt):
        preprocess(config, progress=stop)
    assert calls == [1]
    assert_no_output(out)


def test_output_permissions_follow_umask(tmp_path):
    folder_with(tmp_path, ["a.png"])
    out, _ = run(tmp_path, "a.png 1\n")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
