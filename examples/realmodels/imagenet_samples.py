"""The 20 ImageNet validation photos shipped in the `foolbox` wheel, with their labels, found without importing it.

foolbox keeps them as `foolbox/data/imagenet_<index>_<label>.jpg` (index 00-19, label the ImageNet-1k class
id 0-999) for its own tests; `importlib.util.find_spec` locates the folder without running foolbox's
`__init__` (which imports eagerpy, GitPython and requests).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "foolbox"
DISTRIBUTION = "foolbox==3.3.4"
NUM_CLASSES = 1000
_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.(?:jpg|jpeg|png)", re.IGNORECASE)


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    index: int
    label: int


def parse_name(name: str) -> tuple[int, int]:
    """(index, label) from `imagenet_07_609.jpg`; ValueError for any other name or a label outside 0-999."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name}: not an imagenet_<index>_<label> image name")
    index, label = int(match.group(1)), int(match.group(2))
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"{name}: label {label} is not an ImageNet-1k class (0-{NUM_CLASSES - 1})")
    return index, label


def data_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{PACKAGE} is not installed: pip install {DISTRIBUTION} (or int8kit[realmodels])")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def labelled_images(folder: Path | None = None) -> list[LabelledImage]:
    """Every imagenet_* image in the folder (default: foolbox's), in index order."""
    folder = data_dir() if folder is None else folder
    found = []
    for path in folder.iterdir():
        if path.name.lower().startswith("imagenet_"):
            index, label = parse_name(path.name)
            found.append(LabelledImage(path, index, label))
    if not found:
        raise FileNotFoundError(f"{folder}: no imagenet_<index>_<label> images")
    return sorted(found, key=lambda image: image.index)


def with_mirrors(images: list[LabelledImage], out_dir: Path) -> tuple[Path, Path]:
    """A folder with each photo as shipped and its left-right mirror image (lossless PNG, same label), plus
    `val_list.txt`: twice the evidence from the same labels, since a mirrored photo shows the same class."""
    from PIL import Image, ImageOps

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for image in images:
        shutil.copyfile(image.path, out_dir / image.path.name)
        mirror = f"{image.path.stem}_mirror.png"
        with Image.open(image.path) as img:
            ImageOps.mirror(img.convert("RGB")).save(out_dir / mirror)
        lines += [f"{image.path.name} {image.label}", f"{mirror} {image.label}"]
    label_list = out_dir / "val_list.txt"
    label_list.write_text("# label = ImageNet class id from foolbox's file names\n" + "\n".join(lines) + "\n")
    return out_dir, label_list


# The ten-crop protocol's crop: 224 of a 256-pixel side, so each crop keeps 7/8 of the photo's width and height.
CROP_FRACTION = 224 / 256
VIEWS = ("full", "centre", "top_left", "top_right", "bottom_left", "bottom_right")


def crop_box(width: int, height: int, view: str) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of one view: the whole photo, or a CROP_FRACTION crop at its centre
    or one of its corners."""
    if view == "full":
        return 0, 0, width, height
    w, h = round(width * CROP_FRACTION), round(height * CROP_FRACTION)
    left = {"centre": (width - w) // 2, "top_left": 0, "bottom_left": 0}.get(view, width - w)
    top = {"centre": (height - h) // 2, "top_left": 0, "top_right": 0}.get(view, height - h)
    return left, top, left + w, top + h


def with_views(images: list[LabelledImage], out_dir: Path) -> tuple[Path, Path]:
    """A folder with 12 views of each photo (the whole photo and the ten crops of ImageNet's ten-crop
    evaluation: centre and four corners, each also mirrored), all with the photo's label, plus `val_list.txt`.

    Labels stay true by construction (a crop keeping 7/8 of each side, or a mirror image, shows the same
    object), but the views of one photo are strongly correlated: the set holds len(images) independent photos.
    """
    from PIL import Image, ImageOps

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for image in images:
        with Image.open(image.path) as img:
            rgb = img.convert("RGB")
        for view in VIEWS:
            crop = rgb.crop(crop_box(rgb.width, rgb.height, view))
            for mirrored in (False, True):
                name = f"{image.path.stem}_{view}{'_mirror' if mirrored else ''}.png"
                (ImageOps.mirror(crop) if mirrored else crop).save(out_dir / name)
                lines.append(f"{name} {image.label}")
    label_list = out_dir / "val_list.txt"
    label_list.write_text("# label = ImageNet class id from foolbox's file names\n" + "\n".join(lines) + "\n")
    return out_dir, label_list


def write_label_list(images: list[LabelledImage], path: Path) -> Path:
    """`val_list.txt` for `int8kit preprocess --data-dir <their folder>`."""
    lines = [f"{image.path.name} {image.label}" for image in images]
    path.write_text("# label = ImageNet class id from foolbox's file names\n" + "\n".join(lines) + "\n")
    return path
