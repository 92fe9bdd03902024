"""The seed's preprocessing of one image (PaddleSlim's full_ILSVRC2012_val_preprocess.py), step for step.

Resize so the short side is `resize_size` (Lanczos, `round(w * resize / min(w, h))`), centre crop
`data_dim` (start `(w - D) // 2`), convert to RGB (or L for grayscale models), then either keep uint8
pixels (compact format) or /255, HWC->CHW, subtract mean, divide by std in the seed's float order.

Two departures from the seed, both where it gives a wrong answer: 16-bit images (PNG/TIFF modes I;16 and I)
are scaled to 8 bits (x / 257, the PNG spec's sample scaling) instead of saturating to white; and an extreme
aspect ratio (the resized image more than MAX_RESIZE_FACTOR times a resize_size square, e.g. 1x4000 ->
256x1,024,000) resamples only the crop's source region, so memory follows the output, not the resize.
That path uses the same Lanczos taps, computed from a shifted box: pixels may differ from the seed's by 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from int8kit.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_RESIZE_FACTOR = 4
LANCZOS_SUPPORT = 3.0  # source pixels each side of a tap centre, times the downscale factor


def check_normalisation(grayscale: bool, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """One mean and one non-zero std per channel (1 for grayscale, 3 for RGB), or a ConfigError saying so."""
    channels = 1 if grayscale else 3
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"mean/std need {channels} values for {'grayscale' if grayscale else 'RGB'} "
            f"images, got {len(mean)} and {len(std)}"
        )
    if any(s == 0 for s in std):
        raise ConfigError("std values must be non-zero")


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
        check_normalisation(self.grayscale, self.mean, self.std)

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
        img = to_8_bit(img)
        w, h = img.size
        short = min(w, h)
        if short == 0:
            raise ValueError("image has no pixels")
        size = (round(w * spec.resize_size / short), round(h * spec.resize_size / short))
        if size[0] * size[1] > MAX_RESIZE_FACTOR * spec.resize_size**2:
            img = _resize_crop_region(img, size, spec.data_dim)
        else:
            img = img.resize(size, Image.Resampling.LANCZOS)
            left, top = (size[0] - spec.data_dim) // 2, (size[1] - spec.data_dim) // 2
            img = img.crop((left, top, left + spec.data_dim, top + spec.data_dim))
        mode = "L" if spec.grayscale else "RGB"
        if img.mode != mode:
            img = img.convert(mode)
        pixels = np.asarray(img, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def to_8_bit(img: Image.Image) -> Image.Image:
    """16-bit grey (I;16*, or I as Pillow opens 16-bit PNGs) scaled to L; other modes unchanged."""
    if img.mode.startswith("I;16") or img.mode == "I":
        deep = np.asarray(img).astype(np.int64).clip(0, 65535)
        return Image.fromarray(((deep * 255 + 32767) // 65535).astype(np.uint8), "L")
    return img


def _resize_crop_region(img: Image.Image, size: tuple[int, int], dim: int) -> Image.Image:
    """What `img.resize(size).crop(centre dim x dim)` gives, resampling only the source rows/columns it needs.

    Pillow resizes horizontally then vertically; doing the two passes separately, each on a `box` that maps
    onto the crop, keeps that order (and its intermediate rounding). The source is first cut to the box plus
    the filter's support, so neither pass ever holds more than about the output.
    """
    w, h = img.size
    sx, sy = w / size[0], h / size[1]
    left, top = (size[0] - dim) // 2, (size[1] - dim) // 2
    x0, x1, y0, y1 = left * sx, (left + dim) * sx, top * sy, (top + dim) * sy
    mx, my = LANCZOS_SUPPORT * max(sx, 1.0) + 2, LANCZOS_SUPPORT * max(sy, 1.0) + 2
    cx0, cx1 = max(0, int(x0 - mx)), min(w, int(np.ceil(x1 + mx)))
    cy0, cy1 = max(0, int(y0 - my)), min(h, int(np.ceil(y1 + my)))
    img = img.crop((cx0, cy0, cx1, cy1))
    rows = cy1 - cy0
    img = img.resize((dim, rows), Image.Resampling.LANCZOS, box=(x0 - cx0, 0, x1 - cx0, rows))
    return img.resize((dim, dim), Image.Resampling.LANCZOS, box=(0, y0 - cy0, dim, y1 - cy0))


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
