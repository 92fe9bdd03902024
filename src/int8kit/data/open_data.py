"""Open any data file int8kit reads, choosing the reader by magic bytes and size.

Compact files start with their magic, `.npy` files with numpy's; anything else must be a seed file whose
size fits its header. All readers share the `Dataset` protocol the tester uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from int8kit.data.compact_format import MAGIC, CompactReader
from int8kit.data.seed_format import SeedReader
from int8kit.errors import DataError

NPY_MAGIC = b"\x93NUMPY"


class Dataset(Protocol):
    path: Path
    image_shape: tuple[int, ...]
    labels: np.ndarray | None

    def __len__(self) -> int: ...

    def batch(self, start: int, count: int) -> np.ndarray: ...


class NpyReader:
    """An `.npy` array of images (N, C, H, W) with no labels, memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._array = np.load(self.path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path}: cannot read .npy images: {exc}") from None
        if self._array.ndim < 2 or len(self._array) == 0:
            raise DataError(f"{self.path}: expected an (N, C, H, W) array, got shape {self._array.shape}")
        if not np.issubdtype(self._array.dtype, np.floating):
            raise DataError(
                f"{self.path}: images are {self._array.dtype}; an .npy data file holds float32 model inputs "
                "(normalised images), and raw pixels are not cast silently"
            )
        self.image_shape = tuple(self._array.shape[1:])
        self.labels = None

    def __len__(self) -> int:
        return len(self._array)

    def batch(self, start: int, count: int) -> np.ndarray:
        if start < 0 or count <= 0 or start + count > len(self._array):
            raise IndexError(f"batch [{start}, {start + count}) outside the {len(self)} images of {self.path}")
        return np.asarray(self._array[start : start + count], dtype=np.float32)


def open_dataset(path: str | Path) -> Dataset:
    """Return the reader that fits the file: compact, .npy or seed (raises DataError otherwise)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read data file: {exc}") from None
    if head == MAGIC:
        return CompactReader(path)
    if head.startswith(NPY_MAGIC):
        return NpyReader(path)
    return SeedReader(path)
