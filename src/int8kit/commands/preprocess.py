"""`int8kit preprocess`: image folder + val_list.txt -> seed (float32) or compact (uint8) data file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from int8kit.commands._options import add_output
from int8kit.commands._progress import progress
from int8kit.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageSpec
from int8kit.data.preprocess import DEFAULT_PAD_VALUE, KeepAspectSpec, PreprocessConfig, Spec, preprocess
from int8kit.errors import ConfigError

DATA_DIM, RESIZE_SIZE = 224, 256


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess",
        help="decode and preprocess images into a data file for `int8kit test`",
        description="Resize the short side (Lanczos), centre crop, RGB, /255, CHW, mean/std - the seed's "
        "full_ILSVRC2012_val_preprocess.py steps - on all cores. Text-line models (PaddleOCR's direction "
        "classifier: --resize-height 48 --pad-width 192 --mean 0.5 --std 0.5) resize to a height keeping the "
        "aspect ratio and pad on the right instead.",
    )
    p.add_argument("--local", action="store_true", help="accepted for the seed's scripts: images are always local")
    p.add_argument("--data-dir", type=Path, required=True, help="folder the label list's paths are relative to")
    p.add_argument(
        "--label-list",
        type=Path,
        help="'relative/path.jpg label' lines; a relative path not found as given is looked up in DATA_DIR, "
        "as the reference joins it to --data_dir (default: DATA_DIR/val_list.txt)",
    )
    add_output(p, "data file to write", "--output-file")
    p.add_argument("--data-dim", type=int, help=f"crop size D (default {DATA_DIM})")
    p.add_argument("--resize-size", type=int, help=f"short side after resizing (default {RESIZE_SIZE})")
    p.add_argument(
        "--resize-height",
        type=int,
        metavar="H",
        help="instead of short side + crop: resize to height H keeping the aspect ratio (bilinear; width "
        "ceil(H*w/h), at most --pad-width), as PaddleOCR's text classifier; needs --pad-width",
    )
    p.add_argument("--pad-width", type=int, metavar="W", help="pad resized lines on the right to width W")
    p.add_argument(
        "--pad-value",
        type=int,
        default=DEFAULT_PAD_VALUE,
        metavar="PIXEL",
        help="padding pixel value 0-255, normalised like the image (PaddleOCR pads with 0 after "
        "(x/255-0.5)/0.5, i.e. 127.5, which uint8 cannot hold: 128 is within 0.004 of it)",
    )
    p.add_argument("--grayscale", action="store_true", help="one channel (L) instead of RGB, e.g. 28x28 models")
    p.add_argument("--mean", type=float, nargs="+", help="per-channel mean (default: ImageNet's; 0 for grayscale)")
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default: ImageNet's; 1 for grayscale)")
    p.add_argument(
        "--format",
        choices=("seed", "compact"),
        help="seed: the seed's float32 layout (square images only); compact: uint8 pixels + header, 4x smaller "
        "(default: seed, compact with --resize-height)",
    )
    p.add_argument("--skip-bad", action="store_true", help="leave out missing/corrupt images instead of failing")
    p.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=run)


def label_list_path(data_dir: Path, label_list: Path | None) -> Path:
    """The label list as given if it exists, else joined to the data folder (the reference's convention)."""
    if label_list is None:
        return data_dir / "val_list.txt"
    if label_list.exists() or label_list.is_absolute():
        return label_list
    inside = data_dir / label_list
    return inside if inside.exists() else label_list  # neither: the error names the path as the user gave it


def image_spec(args: argparse.Namespace) -> Spec:
    """The geometry and normalisation the flags describe (grayscale defaults: mean 0, std 1)."""
    channels = 1 if args.grayscale else 3
    mean = tuple(args.mean) if args.mean else ((0.0,) if args.grayscale else IMAGENET_MEAN)
    std = tuple(args.std) if args.std else ((1.0,) if args.grayscale else IMAGENET_STD)
    if len(mean) == 1 and channels == 3:
        mean = mean * 3
    if len(std) == 1 and channels == 3:
        std = std * 3
    keep_aspect = args.resize_height is not None or args.pad_width is not None
    if not keep_aspect:
        data_dim = DATA_DIM if args.data_dim is None else args.data_dim
        resize = RESIZE_SIZE if args.resize_size is None else args.resize_size
        return ImageSpec(data_dim=data_dim, resize_size=resize, grayscale=args.grayscale, mean=mean, std=std)
    if args.resize_height is None or args.pad_width is None:
        raise ConfigError("--resize-height and --pad-width go together (height H, padded to width W)")
    if args.data_dim is not None or args.resize_size is not None:
        raise ConfigError("--data-dim/--resize-size describe a centre crop; --resize-height/--pad-width replace it")
    return KeepAspectSpec(
        height=args.resize_height,
        width=args.pad_width,
        grayscale=args.grayscale,
        mean=mean,
        std=std,
        pad_value=args.pad_value,
    )


def run(args: argparse.Namespace) -> int:
    spec = image_spec(args)
    data_format = args.format or ("compact" if isinstance(spec, KeepAspectSpec) else "seed")
    config = PreprocessConfig(
        data_dir=args.data_dir,
        label_list=label_list_path(args.data_dir, args.label_list),
        output_file=args.output,
        spec=spec,
        format=data_format,
        skip_bad=args.skip_bad,
        workers=args.workers,
    )
    with progress("decoding", unit="images", enabled=not args.no_progress) as update:
        result = preprocess(config, progress=update)
    size = result.output_file.stat().st_size
    c, h, w = spec.shape
    print(
        f"wrote {result.written} images of {c}x{h}x{w} ({data_format} format, {size / 2**20:.1f} MiB) "
        f"to {result.output_file}"
    )
    if result.dropped:
        print(f"left out {len(result.dropped)} bad image(s):", file=sys.stderr)
        for bad in result.dropped:
            print(f"  {bad.path} (line {bad.line}): {bad.reason}", file=sys.stderr)
    return 0
