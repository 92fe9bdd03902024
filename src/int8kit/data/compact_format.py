"""A compact data file: a small header, uint8 CHW pixels, int64 labels. 4x smaller than the seed's floats.

Layout (little-endian): `magic "I8KDATA\\n" | u32 version | u32 header_bytes | u64 N | u32 C, H, W |
u32 dtype (1 = uint8) | f64 mean[C] | f64 std[C] | zero padding to header_bytes (a multiple of 64) |
N*C*H*W uint8 pixels | padding to 8 bytes | N int64 labels`. The reader normalises batches on the fly
exactly as the seed does, so a compact file gives the same floats as a seed file of the same images.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int8kit.data.atomic_file import AtomicFile, write_all
from int8kit.data.images import normalize
from int8kit.errors import DataError

logger = logging.getLogger(__name__)

MAGIC = b"I8KDATA\n"
VERSION = 1
DTYPE_UINT8 = 1
_FIXED = struct.Struct("<8sIIQIIII")


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class CompactHeader:
    """What the compact file says about itself."""

    n: int
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    version: int = VERSION
    dtype: int = DTYPE_UINT8

    @property
    def header_bytes(self) -> int:
        return _pad(_FIXED.size + 16 * self.channels, 64)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def pixel_bytes(self) -> int:
        return self.n * self.channels * self.height * self.width

    @property
    def labels_offset(self) -> int:
        return self.header_bytes + _pad(self.pixel_bytes, 8)

    @property
    def file_size(self) -> int:
        return self.labels_offset + 8 * self.n

    def pack(self) -> bytes:
        fixed = _FIXED.pack(
            MAGIC, self.version, self.header_bytes, self.n, self.channels, self.height, self.width, self.dtype
        )
        floats = struct.pack(f"<{2 * self.channels}d", *self.mean, *self.std)
        return (fixed + floats).ljust(self.header_bytes, b"\0")

    @classmethod
    def unpack(cls, path: Path, data: bytes) -> CompactHeader:
        if len(data) < _FIXED.size:
            raise DataError(f"{path}: too short for a compact data header")
        magic, version, header_bytes, n, c, h, w, dtype = _FIXED.unpack_from(data)
        if magic != MAGIC:
            raise DataError(f"{path}: not a compact data file (bad magic {magic!r})")
        if version != VERSION:
            raise DataError(f"{path}: compact format version {version}; this int8kit reads {VERSION}")
        if dtype != DTYPE_UINT8:
            raise DataError(f"{path}: unknown pixel dtype code {dtype}")
        if c <= 0 or h <= 0 or w <= 0 or len(data) < _FIXED.size + 16 * c:
            raise DataError(f"{path}: bad compact header (C={c}, H={h}, W={w})")
        values = struct.unpack_from(f"<{2 * c}d", data, _FIXED.size)
        _check_normalisation(path, values[:c], values[c:])
        header = cls(n=n, channels=c, height=h, width=w, mean=values[:c], std=values[c:], version=version)
        if header.header_bytes != header_bytes:
            raise DataError(f"{path}: header size {header_bytes} != {header.header_bytes} for C={c}")
        return header


def _check_normalisation(path: Path, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """Readers divide by std: a zero, negative or non-finite value would turn every image into inf/NaN."""
    for k, (m, s) in enumerate(zip(mean, std, strict=True)):
        if not math.isfinite(m):
            raise DataError(f"{path}: compact header has mean {m} for channel {k}; it must be finite")
        if not (math.isfinite(s) and s > 0):
            raise DataError(f"{path}: compact header has std {s} for channel {k}; it must be finite and > 0")


class CompactWriter:
    """Append uint8 CHW images; labels and the final N are written on `close()`."""

    def __init__(
        self, path: str | Path, shape: tuple[int, int, int], mean: tuple[float, ...], std: tuple[float, ...]
    ) -> None:
        c, h, w = shape
        self._header = CompactHeader(n=0, channels=c, height=h, width=w, mean=tuple(mean), std=tuple(std))
        self._out = AtomicFile(path)
        self._out.file.write(self._header.pack())
        self._labels: list[int] = []

    def append(self, pixels: np.ndarray, label: int) -> None:
        if pixels.shape != self._header.image_shape or pixels.dtype != np.uint8:
            raise ValueError(f"expected uint8 {self._header.image_shape}, got {pixels.dtype} {pixels.shape}")
        self._out.file.write(np.ascontiguousarray(pixels).tobytes())
        self._labels.append(int(label))

    def close(self) -> Path:
        header = CompactHeader(**{**self._header.__dict__, "n": len(self._labels)})
        f = self._out.file
        f.write(b"\0" * (header.labels_offset - header.header_bytes - header.pixel_bytes))
        f.write(np.asarray(self._labels, dtype="<i8").tobytes())
        f.seek(0)
        f.write(header.pack())
        return self._out.commit()

    def abort(self) -> None:
        self._out.abort()


def write_compact(
    path: str | Path, pixels: np.ndarray, labels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> Path:
    """Write a whole uint8 (N, C, H, W) array and its labels in the compact layout."""
    writer = CompactWriter(path, pixels.shape[1:], mean, std)
    return write_all(writer, pixels, np.asarray(labels))


class CompactReader:
    """Same interface as SeedReader; `batch` returns normalised float32, `pixels` the raw uint8."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(4096)
        except FileNotFoundError:
            raise DataError(f"{self.path}: data file not found") from None
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read data file: {exc}") from None
        self.header = CompactHeader.unpack(self.path, head)
        if self.header.n <= 0:
            raise DataError(f"{self.path}: header says {self.header.n} images")
        if size != self.header.file_size:
            raise DataError(
                f"{self.path}: compact file with N={self.header.n} images of {self.header.image_shape} "
                f"must be {self.header.file_size} bytes, but it is {size} bytes "
                f"({'truncated' if size < self.header.file_size else 'too long'})"
            )
        self.image_shape = self.header.image_shape
        self.labels = np.array(
            np.memmap(self.path, dtype="<i8", mode="r", offset=self.header.labels_offset, shape=(self.header.n,))
        )

    def __len__(self) -> int:
        return self.header.n

    def pixels(self, start: int, count: int) -> np.ndarray:
        """uint8 images [start, start+count) as a read-only view of the file."""
        if start < 0 or count <= 0 or start + count > self.header.n:
            raise IndexError(f"batch [{start}, {start + count}) outside the {self.header.n} images of {self.path}")
        per_image = int(np.prod(self.image_shape))
        offset = self.header.header_bytes + start * per_image
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=offset, shape=(count, *self.image_shape))

    def batch(self, start: int, count: int) -> np.ndarray:
        """float32 images [start, start+count), normalised with the header's mean/std."""
        return normalize(self.pixels(start, count), self.header.mean, self.header.std)
