"""The idx format (MNIST and its relatives): uint8 arrays with a tiny big-endian header, often gzip'd.

A file starts with 0x00 0x00, a type byte (0x08: uint8), the number of dimensions D, then D u32 sizes, then
the raw data. An idx *folder* holds one images and one labels file per split, named as MNIST names them:
`{train,t10k}-images-idx3-ubyte[.gz]` and `{train,t10k}-labels-idx1-ubyte[.gz]`. Nothing here knows a
particular data set: the examples (examples/fashion_mnist.py) and the demo add names, classes and statistics.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from int8kit.errors import ConfigError, DataError

SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read one (gzip'd or plain) idx file of uint8 data with `ndim` dimensions."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: idx file not found") from None
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


def split_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) files of one split in an idx folder (the .gz names unless only plain files exist)."""
    if split not in SPLIT_PREFIX:
        raise ConfigError(f"unknown idx split {split!r} (train or test)")
    root, prefix = Path(root), SPLIT_PREFIX[split]
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        gz = root / f"{prefix}-{kind}-ubyte.gz"
        plain = gz.with_suffix("")
        paths.append(plain if plain.exists() and not gz.exists() else gz)
    return paths[0], paths[1]


def load_idx_split(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) and int64 labels (N,) of one split of an idx folder; DataError if inconsistent."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: idx folder not found")
    images_path, labels_path = split_paths(root, split)
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels")
    return images, labels


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of uint8 pixels / 255, exact (from the 256-bin histogram)."""
    counts = np.bincount(np.asarray(images, np.uint8).ravel(), minlength=256).astype(np.float64)
    if not counts.sum():
        raise DataError("no pixels to compute statistics from")
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = float(counts @ values / counts.sum())
    var = float(counts @ (values - mean) ** 2 / counts.sum())
    return mean, var**0.5
