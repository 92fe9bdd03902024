"""Images, a model and the `preprocess` + `Predictor.run` reference that `classify` must reproduce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from int8kit.cli import main
from int8kit.data.open_data import open_dataset
from int8kit.models import zoo
from int8kit.runtime.predictor import Predictor

DIM, RESIZE, N_IMAGES = 32, 36, 40
IMAGE_FLAGS = ["--data-dim", str(DIM), "--resize-size", str(RESIZE)]


def make_images(folder: Path, n: int = N_IMAGES, seed: int = 0) -> list[Path]:
    """Random photos of assorted sizes and modes (RGB, L, RGBA), as PNG and JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(DIM, 3 * DIM, size=2))
        mode = ("RGB", "L", "RGBA")[i % 3]
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8).squeeze()
        ext = ".jpg" if mode != "RGBA" and i % 2 else ".png"
        path = folder / f"img{i:03d}{ext}"
        Image.fromarray(pixels, mode).save(path)
        paths.append(path)
    return paths


def save_model(path: Path) -> Path:
    zoo.save("resnet_tiny", path, size=DIM)
    return path


def reference_scores(tmp_path: Path, model: Path, images: list[Path]) -> np.ndarray:
    """`int8kit preprocess` over the images, then `Predictor.run` on its output: the rows classify must give."""
    data_dir = images[0].parent
    listing = tmp_path / "ref_list.txt"
    listing.write_text("".join(f"{p.name} 0\n" for p in images))
    out = tmp_path / "ref.bin"
    args = ["preprocess", "--data-dir", str(data_dir), "--label-list", str(listing), "--output-file", str(out)]
    assert main([*args, *IMAGE_FLAGS, "--workers", "1"]) == 0
    data = open_dataset(out)
    x = np.asarray(data.batch(0, len(data)), dtype=np.float32)
    return Predictor(model, num_threads=1).run(x)
