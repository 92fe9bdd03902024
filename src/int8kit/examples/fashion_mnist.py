"""Fashion-MNIST from the Debian package `dataset-fashion-mnist`, written as an int8kit compact data file.

The package ships gzip'd idx files (`/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}
-ubyte.gz`): a big-endian header (magic 0x0000_08_0D with D the number of dims, then D u32 sizes) and raw
uint8 data. The compact file holds 1x28x28 uint8 images (optionally resized to 32x32), the labels, and
the training set's mean/std so that the reader yields exactly what the example models were trained on.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from int8kit.data.compact_format import write_compact
from int8kit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "apt-get install dataset-fashion-mnist"
Split = Literal["train", "test"]
_PREFIX = {"train": "train", "test": "t10k"}

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
    if split not in _PREFIX:
        raise ConfigError(f"unknown Fashion-MNIST split {split!r} (train or test)")
    root = Path(root)
    prefix = _PREFIX[split]
    return root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read one (gzip'd or plain) idx file of uint8 data with `ndim` dimensions."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        hint = f" (install it with `{APT_HINT}`)" if path.parent == DEFAULT_ROOT else ""
        raise DataError(f"{path}: Fashion-MNIST file not found{hint}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read idx file: {exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: truncated or corrupt gzip data: {exc}") from None
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an idx header ({len(raw)} bytes)")
    zero, dtype, dims = struct.unpack_from(">HBB", raw)
    if zero != 0 or dtype != 0x08 or dims != ndim:
        raise DataError(f"{path}: bad idx magic {raw[:4].hex()} (expected 000008{ndim:02x}: uint8 data, {ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header ({len(raw)} of {header} bytes)")
    shape = struct.unpack_from(f">{ndim}I", raw, 4)
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "too long"
        raise DataError(f"{path}: idx file of shape {shape} must hold {expected} bytes, it holds {len(raw)} ({state})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(split: Split, root: str | Path = DEFAULT_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of one split; raises DataError if inconsistent."""
    images_path, labels_path = split_paths(split, root)
    if not Path(root).is_dir():
        raise DataError(f"{root}: Fashion-MNIST folder not found (install it with `{APT_HINT}`)")
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{labels_path}: label {int(labels.max())} outside the {len(CLASSES)} classes")
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
