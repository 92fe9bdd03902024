"""The seed's binary data file: `int64 N | N x float32[C, D, D] | N x int64 label`, little-endian.

Size is `8 + N * (C*D*D*4 + 8)`; the file does not record D, so the reader derives it from the size
(C=3 for the seed, C=1 for grayscale files: 3*D*D is never a square, so the two cannot be confused).
Batches are read through a `numpy.memmap` of just that batch, so streaming a 30 GB file keeps memory flat.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from int8kit.data.atomic_file import AtomicFile, write_all
from int8kit.errors import DataError

logger = logging.getLogger(__name__)

HEADER_BYTES = 8


def seed_file_size(n: int, channels: int, dim: int) -> int:
    return HEADER_BYTES + n * (channels * dim * dim * 4 + 8)


class SeedWriter:
    """Append float32 CHW images one at a time; labels go at the end and N is patched on `close()`."""

    def __init__(self, path: str | Path, shape: tuple[int, int, int]) -> None:
        self.shape = tuple(shape)
        self._out = AtomicFile(path)
        self._out.file.write(np.int64(0).tobytes())
        self._labels: list[int] = []

    def append(self, image: np.ndarray, label: int) -> None:
        if image.shape != self.shape:
            raise ValueError(f"image shape {image.shape} != {self.shape}")
        self._out.file.write(np.ascontiguousarray(image, dtype="<f4").tobytes())
        self._labels.append(int(label))

    def close(self) -> Path:
        f = self._out.file
        f.write(np.asarray(self._labels, dtype="<i8").tobytes())
        f.seek(0)
        f.write(np.int64(len(self._labels)).astype("<i8").tobytes())
        return self._out.commit()

    def abort(self) -> None:
        self._out.abort()


def write_seed(path: str | Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write a whole (N, C, D, D) array and its labels in the seed layout."""
    images = np.asarray(images, dtype=np.float32)
    writer = SeedWriter(path, images.shape[1:])
    return write_all(writer, images, np.asarray(labels))


def _derive_shape(path: Path, n: int, size: int, channels: int | None, dim: int | None) -> tuple[int, int]:
    """Find (C, D) that make `8 + N*(C*D*D*4 + 8)` equal the file size, or explain why none does."""
    body = size - HEADER_BYTES
    if channels is not None and dim is not None:
        expected = seed_file_size(n, channels, dim)
        if expected != size:
            raise DataError(
                f"{path}: seed file with N={n} images of {channels}x{dim}x{dim} must be {expected} bytes, "
                f"but it is {size} bytes ({'truncated' if size < expected else 'too long'})"
            )
        return channels, dim
    if body % n:
        raise DataError(
            f"{path}: {size} bytes is not 8 + N*(C*D*D*4 + 8) for the N={n} in its header "
            "(truncated, or not a seed data file)"
        )
    per_image = body // n - 8
    if per_image <= 0 or per_image % 4:
        raise DataError(
            f"{path}: {per_image + 8} bytes per image cannot hold a float32 image and a label "
            "(truncated, or not a seed data file)"
        )
    values = per_image // 4
    for c in (channels,) if channels is not None else (3, 1):
        if values % c:
            continue
        d = math.isqrt(values // c)
        if c * d * d == values and (dim is None or d == dim):
            return c, d
    raise DataError(
        f"{path}: {size} bytes with N={n} gives {values} floats per image, which is not "
        f"{'C' if channels is None else channels}x{'D' if dim is None else dim}x"
        f"{'D' if dim is None else dim} (truncated, or not a seed data file)"
    )


class SeedReader:
    """Read a seed data file lazily: `len`, `labels`, `image_shape` and `batch(start, count)`."""

    def __init__(self, path: str | Path, channels: int | None = None, dim: int | None = None) -> None:
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(HEADER_BYTES)
        except FileNotFoundError:
            raise DataError(f"{self.path}: data file not found") from None
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read data file: {exc}") from None
        if len(head) < HEADER_BYTES:
            raise DataError(f"{self.path}: {size} bytes is too short for a seed data file (no int64 count)")
        n = int(np.frombuffer(head, dtype="<i8")[0])
        if n <= 0:
            raise DataError(f"{self.path}: header says {n} images; a seed data file needs N > 0")
        c, d = _derive_shape(self.path, n, size, channels, dim)
        self._n = n
        self.image_shape = (c, d, d)
        self._image_bytes = c * d * d * 4
        labels_offset = HEADER_BYTES + n * self._image_bytes
        self.labels = np.array(np.memmap(self.path, dtype="<i8", mode="r", offset=labels_offset, shape=(n,)))
        logger.debug("%s: seed file, %d images of %s", self.path, n, self.image_shape)

    def __len__(self) -> int:
        return self._n

    def batch(self, start: int, count: int) -> np.ndarray:
        """Images [start, start+count) as a read-only float32 (count, C, D, D) view of the file."""
        if start < 0 or count <= 0 or start + count > self._n:
            raise IndexError(f"batch [{start}, {start + count}) outside the {self._n} images of {self.path}")
        offset = HEADER_BYTES + start * self._image_bytes
        return np.memmap(self.path, dtype="<f4", mode="r", offset=offset, shape=(count, *self.image_shape))
