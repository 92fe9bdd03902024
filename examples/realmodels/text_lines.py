"""Rendered text lines, upright or turned 180 degrees: labelled data for PaddleOCR's direction classifier.

The label is true by construction: class 0 is the line as drawn, class 1 the same kind of line rotated by
180 degrees (the classifier's '0' and '180'). Lines are pseudo-words and digit groups in the DejaVu fonts of
Debian's `fonts-dejavu-core`, with random size, margins, grey levels and noise. Everything comes from one
seed, so a set is the same on every machine with those fonts and this Pillow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# The six faces fonts-dejavu-core ships (the others are in fonts-dejavu-extra).
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
)
FONTS_PACKAGE = "fonts-dejavu-core"
CONSONANTS = "bcdfghjklmnpqrstvwxyz"
VOWELS = "aeiou"
UPRIGHT, ROTATED = 0, 1


@dataclass(frozen=True)
class TextLineSet:
    """A folder of PNG text lines with `val_list.txt` ("name label" per line), ready for preprocess."""

    folder: Path
    label_list: Path
    texts: tuple[str, ...]
    labels: tuple[int, ...]


def missing_fonts(font_dir: Path = FONT_DIR) -> list[Path]:
    return [font_dir / f for f in FONTS if not (font_dir / f).is_file()]


def _word(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 8)))
    word = "".join(rng.choice(CONSONANTS if i % 2 == 0 else VOWELS) for i in range(rng.randint(3, 9)))
    style = rng.random()
    if style < 0.3:
        return word.capitalize()
    return word.upper() if style < 0.4 else word


def random_line(rng: random.Random) -> str:
    """One to four pseudo-words or digit groups."""
    return " ".join(_word(rng) for _ in range(rng.randint(1, 4)))


def render_line(text: str, rng: random.Random, font_dir: Path = FONT_DIR) -> Image.Image:
    """The text, dark on light, tightly cropped with random margins and Gaussian noise (RGB)."""
    size = rng.randint(18, 44)
    font = ImageFont.truetype(str(font_dir / rng.choice(FONTS)), size)
    left, top, right, bottom = font.getbbox(text)
    margin_x = rng.randint(2, int(size * 0.6))
    margin_top, margin_bottom = rng.randint(1, int(size * 0.4)), rng.randint(1, int(size * 0.4))
    background, ink = rng.randint(170, 255), rng.randint(0, 80)
    img = Image.new("L", (right - left + 2 * margin_x, bottom - top + margin_top + margin_bottom), background)
    ImageDraw.Draw(img).text((margin_x - left, margin_top - top), text, fill=ink, font=font)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, rng.uniform(0.0, 12.0), (img.height, img.width))
    pixels = (np.asarray(img, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "L").convert("RGB")


def render_set(out_dir: str | Path, count: int, seed: int, font_dir: Path = FONT_DIR) -> TextLineSet:
    """`count` lines, alternately upright and rotated by 180 degrees, as PNGs plus `val_list.txt`."""
    missing = missing_fonts(font_dir)
    if missing:
        raise FileNotFoundError(f"{missing[0]}: font not found (apt-get install {FONTS_PACKAGE})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    texts, labels, lines = [], [], []
    for i in range(count):
        text = random_line(rng)
        img = render_line(text, rng, font_dir)
        label = ROTATED if i % 2 else UPRIGHT
        if label == ROTATED:
            img = img.transpose(Image.Transpose.ROTATE_180)
        name = f"line_{i:05d}.png"
        img.save(out / name)
        texts.append(text)
        labels.append(label)
        lines.append(f"{name} {label}")
    label_list = out / "val_list.txt"
    label_list.write_text(f"# seed {seed}: label 0 = upright, 1 = rotated 180 degrees\n" + "\n".join(lines) + "\n")
    return TextLineSet(out, label_list, tuple(texts), tuple(labels))
