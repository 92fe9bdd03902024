"""The seed's preprocessing of one image (PaddleSlim's full_ILSVRC2012_val_preprocess.py), step for step.

Resize so the short side is `resize_size` (Lanczos, `round(w * resize / min(w, h))`), centre crop
`data_dim` (start `(w - D) // 2`), convert to RGB (or L for grayscale models), then either keep uint8
pixels (compact format) or /255, HWC->CHW, subtract mean, divide by std in the seed's float order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from int8kit.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageSpec:
    """How to turn an image file into a model input. Mean/std have one value per channel."""

    data_dim: int = 224
    resize_size: int = 256
    grayscale: bool = False
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.data_dim <= 0:
            raise ConfigError(f"data dim must be positive, got {self.data_dim}")
        if self.resize_size < self.data_dim:
            raise ConfigError(f"resize size {self.resize_size} is smaller than the crop {self.data_dim}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(
                f"mean/std need {self.channels} values for {'grayscale' if self.grayscale else 'RGB'} "
                f"images, got {len(self.mean)} and {len(self.std)}"
            )
        if any(s == 0 for s in self.std):
            raise ConfigError("std values must be non-zero")

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.data_dim, self.data_dim)


def load_uint8(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """Decode, resize, crop and colour-convert one image: uint8 CHW. Raises OSError/ValueError if bad."""
    with Image.open(path) as img:
        img.load()
        w, h = img.size
        short = min(w, h)
        if short == 0:
            raise ValueError("image has no pixels")
        size = (round(w * spec.resize_size / short), round(h * spec.resize_size / short))
        img = img.resize(size, Image.Resampling.LANCZOS)
        w, h = img.size
        left, top = (w - spec.data_dim) // 2, (h - spec.data_dim) // 2
        img = img.crop((left, top, left + spec.data_dim, top + spec.data_dim))
        mode = "L" if spec.grayscale else "RGB"
        if img.mode != mode:
            img = img.convert(mode)
        pixels = np.asarray(img, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def normalize(pixels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 (..., C, H, W) -> float32 as the seed computes it: x/255 in float32, then -mean, /std."""
    x = pixels.astype(np.float32) / np.float32(255)
    shape = (len(mean), 1, 1)
    # The seed subtracts float64 mean/std in place from float32 data: same rounding here.
    x -= np.asarray(mean, dtype=np.float64).reshape(shape)
    x /= np.asarray(std, dtype=np.float64).reshape(shape)
    return x


def load_float(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """One image as the seed's float32 CHW model input."""
    return normalize(load_uint8(path, spec), spec.mean, spec.std)
