"""preprocess -> file bytes equal an independent re-implementation of the seed's script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from int8kit.data import CompactReader, ImageSpec, SeedReader, open_dataset
from int8kit.data.preprocess import PreprocessConfig, preprocess

MEAN = np.array([0.485, 0.456, 0.406]).reshape((3, 1, 1))
STD = np.array([0.229, 0.224, 0.225]).reshape((3, 1, 1))


def seed_reference(path: Path, data_dim: int, size: int) -> np.ndarray:
    """Written after full_ILSVRC2012_val_preprocess.py: resize_short, crop_image, process_image."""
    img = Image.open(path)
    percent = float(size) / min(img.size[0], img.size[1])
    resized = (int(round(img.size[0] * percent)), int(round(img.size[1] * percent)))
    img = img.resize(resized, Image.LANCZOS)
    width, height = img.size
    w_start, h_start = (width - data_dim) // 2, (height - data_dim) // 2
    img = img.crop((w_start, h_start, w_start + data_dim, h_start + data_dim))
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.array(img).astype("float32").transpose((2, 0, 1)) / 255
    arr -= MEAN
    arr /= STD
    return arr


def make_images(folder: Path, seed: int = 0) -> list[tuple[str, int]]:
    """Random images of various sizes, modes and formats; returns (relative path, label) pairs."""
    rng = np.random.default_rng(seed)
    specs = [
        ("a/rgb_wide.jpg", "RGB", (61, 40)),
        ("a/rgb_tall.png", "RGB", (37, 53)),
        ("b/gray.png", "L", (45, 45)),
        ("b/rgba.png", "RGBA", (50, 39)),
        ("b/palette.png", "P", (41, 48)),
        ("c/big.jpg", "RGB", (300, 260)),
        ("c/small.jpg", "RGB", (20, 17)),
    ]
    pairs = []
    for i, (name, mode, size) in enumerate(specs):
        channels = {"RGB": 3, "L": 1, "RGBA": 4, "P": 1}[mode]
        data = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
        img = Image.fromarray(data.squeeze(-1) if channels == 1 else data, mode="L" if mode == "P" else mode)
        if mode == "P":
            img = img.convert("P")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        pairs.append((name, int(rng.integers(0, 10)) + i))
    return pairs


def write_list(path: Path, pairs: list[tuple[str, int]]) -> Path:
    path.write_text("".join(f"{name} {label}\n" for name, label in pairs))
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    pairs = make_images(folder)
    return folder, pairs, write_list(folder / "val_list.txt", pairs)


@pytest.mark.parametrize(("data_dim", "resize"), [(32, 36), (224, 256)])
def test_seed_file_bytes_match_reference(image_folder, tmp_path, data_dim, resize):
    folder, pairs, labels = image_folder
    out = tmp_path / "val.bin"
    spec = ImageSpec(data_dim=data_dim, resize_size=resize)
    result = preprocess(PreprocessConfig(folder, labels, out, spec=spec, workers=1))
    assert result.written == len(pairs) and not result.dropped

    raw = out.read_bytes()
    n = np.frombuffer(raw[:8], dtype="<i8")[0]
    assert n == len(pairs)
    assert len(raw) == 8 + n * (3 * data_dim * data_dim * 4 + 8)
    images = np.frombuffer(raw[8 : 8 + n * 3 * data_dim * data_dim * 4], dtype="<f4").reshape(n, 3, data_dim, data_dim)
    got_labels = np.frombuffer(raw[8 + n * 3 * data_dim * data_dim * 4 :], dtype="<i8")
    expected = np.stack([seed_reference(folder / name, data_dim, resize) for name, _ in pairs])
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got_labels, [label for _, label in pairs])

    reader = open_dataset(out)
    assert isinstance(reader, SeedReader) and len(reader) == n
    assert reader.image_shape == (3, data_dim, data_dim)
    np.testing.assert_array_equal(reader.batch(2, 3), images[2:5])
    np.testing.assert_array_equal(reader.labels, got_labels)


def test_compact_file_normalises_like_seed(image_folder, tmp_path):
    folder, pairs, labels = image_folder
    spec = ImageSpec(data_dim=32, resize_size=36)
    seed_out = preprocess(PreprocessConfig(folder, labels, tmp_path / "s.bin", spec=spec, workers=1)).output_file
    out = preprocess(PreprocessConfig(folder, labels, tmp_path / "c.bin", spec=spec, format="compact", workers=1))
    reader = open_dataset(out.output_file)
    assert isinstance(reader, CompactReader)
    expected = np.stack([seed_reference(folder / name, 32, 36) for name, _ in pairs])
    np.testing.assert_allclose(reader.batch(0, len(pairs)), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(reader.labels, [label for _, label in pairs])
    # uint8 pixels: about 4x smaller than the seed's float32 file
    assert out.output_file.stat().st_size * 3.5 < seed_out.stat().st_size


def test_process_pool_gives_same_bytes(image_folder, tmp_path):
    folder, _, labels = image_folder
    spec = ImageSpec(data_dim=32, resize_size=36)
    one = preprocess(PreprocessConfig(folder, labels, tmp_path / "one.bin", spec=spec, workers=1))
    seen = []
    two = preprocess(
        PreprocessConfig(folder, labels, tmp_path / "two.bin", spec=spec, workers=2, chunk_size=2),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert one.output_file.read_bytes() == two.output_file.read_bytes()
    assert seen[-1] == (7, 7) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_grayscale_28x28(tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    pairs = []
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(tmp_path / f"{i}.png")
        pairs.append((f"{i}.png", i))
    labels = write_list(tmp_path / "list.txt", pairs)
    spec = ImageSpec(data_dim=28, resize_size=28, grayscale=True, mean=(0.5,), std=(0.25,))
    out = preprocess(PreprocessConfig(tmp_path, labels, tmp_path / "g.bin", spec=spec, workers=1)).output_file
    reader = open_dataset(out)
    assert reader.image_shape == (1, 28, 28)
    expected = (pixels[:, None].astype(np.float64) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(reader.batch(0, 4), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(reader.labels, [0, 1, 2, 3])
