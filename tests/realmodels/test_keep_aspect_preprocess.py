"""`preprocess --resize-height/--pad-width` (PaddleOCR's text-line input) against numpy written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from int8kit.cli import main
from int8kit.data.open_data import open_dataset
from int8kit.data.preprocess import KeepAspectSpec, PreprocessConfig, load_input, preprocess
from int8kit.errors import ConfigError

SPEC = KeepAspectSpec(height=48, width=192, mean=(0.5,) * 3, std=(0.5,) * 3)


def paddle_normalise(pixels: np.ndarray) -> np.ndarray:
    """rapidocr's text_cls.resize_norm_img after the resize: /255, -0.5, /0.5 (HWC uint8 -> CHW float32)."""
    x = pixels.astype(np.float32).transpose(2, 0, 1) / 255
    return (x - 0.5) / 0.5


def halve_bilinear(pixels: np.ndarray) -> np.ndarray:
    """An exact 2x downscale as Pillow's antialiased bilinear does it: taps 1/8, 3/8, 3/8, 1/8 per axis,
    renormalised where the support leaves the image (HWC float)."""

    def axis(a: np.ndarray, n: int) -> np.ndarray:
        out = []
        for i in range(n // 2):
            taps = {2 * i - 1: 1, 2 * i: 3, 2 * i + 1: 3, 2 * i + 2: 1}
            taps = {j: w for j, w in taps.items() if 0 <= j < n}
            total = sum(taps.values())
            out.append(sum(w * np.take(a, j, axis=0) for j, w in taps.items()) / total)
        return np.stack(out)

    h, w = pixels.shape[:2]
    rows = axis(pixels.astype(np.float64), h)
    return np.swapaxes(axis(np.swapaxes(rows, 0, 1), w), 0, 1)


def save(tmp_path, pixels: np.ndarray, name: str = "img.png"):
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path


def test_height_already_right_copies_pixels_and_pads_the_rest(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (48, 70, 3), dtype=np.uint8)
    x = load_input(save(tmp_path, pixels), SPEC)
    assert x.shape == (3, 48, 192) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :, :70], paddle_normalise(pixels))
    pad = (128 / 255 - 0.5) / 0.5  # PaddleOCR pads 0.0; 128 is the nearest uint8 pixel to its 127.5
    np.testing.assert_allclose(x[:, :, 70:], pad, rtol=0, atol=1e-7)
    assert abs(pad) < 0.004


def test_two_times_downscale_matches_the_bilinear_taps(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (96, 150, 3), dtype=np.uint8)
    x = load_input(save(tmp_path, pixels), SPEC)
    expected = (halve_bilinear(pixels).transpose(2, 0, 1) / 255 - 0.5) / 0.5
    assert math.ceil(48 * 150 / 96) == 75
    # Pillow's fixed-point coefficients round: at most one grey level (2/255 after /0.5)
    np.testing.assert_allclose(x[:, :, :75], expected, rtol=0, atol=2 / 255 + 1e-6)
    assert np.all(x[:, :, 75:] == x[0, 0, 75])


@pytest.mark.parametrize(("w", "h", "width"), [(37, 20, 89), (1000, 50, 192), (3, 400, 1), (191, 48, 191)])
def test_resized_width_is_paddleocrs(w, h, width, tmp_path):
    """ceil(48 * w / h), capped at the pad width (longer lines are squeezed), at least one column."""
    assert width == max(1, min(192, math.ceil(48 * (w / float(h)))))
    pixels = np.full((h, w, 3), 30, dtype=np.uint8)
    x = load_input(save(tmp_path, pixels), SPEC)
    np.testing.assert_allclose(x[:, :, :width], (30 / 255 - 0.5) / 0.5, atol=1e-6)
    np.testing.assert_allclose(x[:, :, width:], (128 / 255 - 0.5) / 0.5, atol=1e-6)


def test_grayscale_and_palette_images(tmp_path):
    grey = np.arange(48 * 60, dtype=np.uint32).reshape(48, 60) % 256
    spec = KeepAspectSpec(height=48, width=64, grayscale=True, mean=(0.0,), std=(1.0,), pad_value=0)
    x = load_input(save(tmp_path, grey.astype(np.uint8)), spec)
    np.testing.assert_array_equal(x[0, :, :60], grey.astype(np.float32) / 255)
    assert np.all(x[0, :, 60:] == 0)
    palette = Image.fromarray(np.full((24, 24, 3), 200, np.uint8)).quantize(colors=2)
    assert palette.mode == "P"
    palette.save(tmp_path / "p.png")
    rgb = load_input(tmp_path / "p.png", SPEC)  # converted to RGB first, then resized 24 -> 48 rows
    np.testing.assert_allclose(rgb[:, :, :48], (200 / 255 - 0.5) / 0.5, atol=1e-6)


def test_cli_writes_what_the_library_computes(tmp_path, capsys):
    rng = np.random.default_rng(2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, (h, w) in enumerate([(30, 100), (64, 64), (20, 400)]):
        save(folder, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"{i}.png")
    (folder / "val_list.txt").write_text("0.png 1\n1.png 0\n2.png 1\n")
    out = tmp_path / "lines.bin"
    argv = ["preprocess", "--data-dir", str(folder), "-o", str(out), "--resize-height", "48", "--pad-width", "192"]
    assert main([*argv, "--mean", "0.5", "--std", "0.5", "--workers", "1", "--no-progress"]) == 0
    assert "3 images of 3x48x192 (compact format" in capsys.readouterr().out
    data = open_dataset(out)
    expected = np.stack([load_input(folder / f"{i}.png", SPEC) for i in range(3)])
    np.testing.assert_allclose(data.batch(0, 3), expected, rtol=0, atol=1e-6)
    assert list(data.labels) == [1, 0, 1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resize-height", "48"], "--resize-height and --pad-width go together"),
        (["--resize-height", "48", "--pad-width", "192", "--data-dim", "32"], "replace it"),
        (["--resize-height", "48", "--pad-width", "192", "--format", "seed"], "need the compact format"),
        (["--resize-height", "48", "--pad-width", "192", "--pad-value", "300"], "pad value"),
    ],
)
def test_cli_refuses_contradictory_options(tmp_path, capsys, extra, message):
    folder = tmp_path / "imgs"
    folder.mkdir()
    save(folder, np.zeros((10, 10, 3), np.uint8), "a.png")
    (folder / "val_list.txt").write_text("a.png 0\n")
    out = tmp_path / "x.bin"
    assert main(["preprocess", "--data-dir", str(folder), "-o", str(out), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_square_keep_aspect_files_may_be_seed_format(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    save(folder, np.full((16, 8, 3), 77, np.uint8), "a.png")
    (folder / "val_list.txt").write_text("a.png 3\n")
    spec = KeepAspectSpec(height=32, width=32, pad_value=0)
    out = preprocess(PreprocessConfig(folder, folder / "val_list.txt", tmp_path / "s.bin", spec, "seed")).output_file
    np.testing.assert_array_equal(open_dataset(out).batch(0, 1)[0], load_input(folder / "a.png", spec))
    with pytest.raises(ConfigError, match="compact"):
        PreprocessConfig(folder, folder / "val_list.txt", tmp_path / "t.bin", KeepAspectSpec(), "seed")
