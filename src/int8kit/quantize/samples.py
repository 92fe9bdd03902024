"""The calibration sample: a seeded random subset of a data file, read batch by batch.

Data may be an `.npy` array (memory-mapped, never loaded whole), any file `int8kit.data` reads (seed
or compact format), an in-memory array, or an object with `len()` and `batch(start, n)`. Only the
sampled rows are ever read, in file order for locality.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from int8kit.errors import ConfigError, DataError, InputError

logger = logging.getLogger(__name__)


class CalibrationSamples:
    """`num_samples` rows (all if fewer) of `data`, drawn without replacement with `seed`."""

    def __init__(self, data: Any, num_samples: int, seed: int = 0, input_dtype: np.dtype | None = None) -> None:
        """input_dtype: the model input's element type when it is an integer one (a model with its own
        preprocessing reads uint8 pixels); samples are then fed as that type, else as float32."""
        self.input_dtype = np.dtype(np.float32) if input_dtype is None else np.dtype(input_dtype)
        if num_samples <= 0:
            raise ConfigError(f"number of calibration samples must be positive, got {num_samples}")
        self.source, self.label = _open(data)
        total = len(self.source)
        if total == 0:
            raise DataError(f"{self.label}: the calibration data holds no samples")
        count = min(num_samples, total)
        if count < num_samples:
            logger.warning("%s holds only %d samples; calibrating on all of them", self.label, total)
        rng = np.random.default_rng(seed)
        self.indices = np.sort(rng.choice(total, size=count, replace=False))
        first = self._read_raw(self.indices[:1])
        self.sample_shape = tuple(first.shape[1:])
        self.dtype = first.dtype  # as stored, before any conversion
        if self.input_dtype != np.float32:
            if self.dtype != self.input_dtype:
                raise InputError(
                    f"{self.label}: samples are {self.dtype}, but the model input is {self.input_dtype} "
                    f"(it does its own preprocessing): give it {self.input_dtype} images"
                )
        elif not np.issubdtype(self.dtype, np.floating):
            raise InputError(
                f"{self.label}: samples are {self.dtype}, but calibration needs float32 model inputs (normalised "
                "images); raw pixels are not cast silently: normalise them, or use `int8kit preprocess`"
            )
        if self.dtype != self.input_dtype:
            logger.info("%s: converting %s samples to float32", self.label, self.dtype)

    def __len__(self) -> int:
        return len(self.indices)

    def check_fits(self, input_name: str, input_shape: Sequence[int | str | None]) -> None:
        """InputError unless one sample fits the model input (symbolic or unknown dims fit anything)."""
        expected = tuple(input_shape)[1:]
        fits = len(expected) == len(self.sample_shape) and all(
            not isinstance(e, int) or e <= 0 or e == s for e, s in zip(expected, self.sample_shape, strict=True)
        )
        if not fits:
            shown = tuple(d if isinstance(d, int) and d > 0 else "?" for d in input_shape)
            raise InputError(
                f"{self.label}: samples of shape {self.sample_shape} do not fit model input "
                f"{input_name!r} of shape {shown} (expected (N, {', '.join(map(str, shown[1:]))}))"
            )

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Arrays of up to `batch_size` samples (float32, or the model's integer input type), in file order."""
        for start in range(0, len(self.indices), batch_size):
            yield self._read(self.indices[start : start + batch_size])

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = self._read_raw(indices)
        return np.ascontiguousarray(out, dtype=self.input_dtype) if out.dtype != self.input_dtype else out

    def _read_raw(self, indices: np.ndarray) -> np.ndarray:
        if hasattr(self.source, "batch"):
            runs = np.split(indices, np.flatnonzero(np.diff(indices) != 1) + 1)
            parts = [np.asarray(self.source.batch(int(r[0]), len(r))) for r in runs if len(r)]
            out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            out = np.asarray(self.source[indices])
        return out


def _open(data: Any) -> tuple[Any, str]:
    """(indexable rows or reader with batch(), label for messages)."""
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise DataError(f"{path}: calibration data file not found")
        if path.suffix == ".npy":
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: cannot read the .npy array: {exc}") from None
            return _as_rows(array, str(path)), str(path)
        from int8kit.data.open_data import open_dataset  # lazily: only for the binary formats

        return open_dataset(path), str(path)
    if isinstance(data, np.ndarray):
        return _as_rows(data, "calibration array"), "calibration array"
    if hasattr(data, "batch") and hasattr(data, "__len__"):
        return data, str(getattr(data, "path", type(data).__name__))
    raise TypeError(f"calibration data must be a path, an array or a dataset reader, not {type(data).__name__}")


def _as_rows(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim < 2:
        raise DataError(f"{label}: expected an (N, C, H, W) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{label}: samples must be numeric, got {array.dtype}")
    return array
