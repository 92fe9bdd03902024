"""Fashion-MNIST from the Debian package `dataset-fashion-mnist`, written as an int8kit compact data file.

An example, not part of the library: the package ships an idx folder (`/usr/share/datasets/fashion-mnist/
{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`), which int8kit.data.idx reads; this adds the classes and
the training statistics. The compact file holds 1x28x28 uint8 images (optionally resized to 32x32), the
labels, and the training set's mean/std so that the reader yields exactly what the example models were
trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from int8kit.data import idx
from int8kit.data.compact_format import write_compact
from int8kit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "apt-get install dataset-fashion-mnist"
Split = Literal["train", "test"]

# Mean/std of the 60,000 training images' pixels / 255 (tests/examples checks them against the package).
MEAN = (0.2860405969887955,)
STD = (0.35302424451492237,)
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def split_paths(split: Split, root: str | Path = DEFAULT_ROOT) -> tuple[Path, Path]:
    """The (images, labels) idx files of one split."""
    return idx.split_paths(root, split)


def load_split(split: Split, root: str | Path = DEFAULT_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of one split; raises DataError if inconsistent."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: Fashion-MNIST folder not found (install it with `{APT_HINT}`)")
    images, labels = idx.load_idx_split(root, split)
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{split_paths(split, root)[1]}: label {int(labels.max())} outside the {len(CLASSES)} classes")
    return images, labels


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 (N, H, W) images to (N, size, size) with Pillow; a no-op at the same size."""
    if images.shape[1:] == (size, size):
        return images
    from PIL import Image

    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return out


def fashion_mnist_to_compact(
    split: Split,
    out_path: str | Path,
    size: int = 28,
    root: str | Path = DEFAULT_ROOT,
    limit: int | None = None,
) -> Path:
    """Write one split (its first `limit` images if given) as a compact file of 1 x size x size images."""
    if size < 1:
        raise ConfigError(f"image size must be positive, got {size}")
    images, labels = load_split(split, root)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(images) == 0:
        raise DataError(f"{split_paths(split, root)[0]}: no images to write")
    pixels = resize(images, size)[:, None]
    path = write_compact(out_path, pixels, labels, MEAN, STD)
    logger.info("wrote %d Fashion-MNIST %s images (%dx%d) to %s", len(pixels), split, size, size, path)
    return path
