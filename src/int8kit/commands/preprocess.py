"""`int8kit preprocess`: image folder + val_list.txt -> seed (float32) or compact (uint8) data file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from int8kit.commands._options import add_output
from int8kit.commands._progress import progress
from int8kit.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageSpec
from int8kit.data.preprocess import PreprocessConfig, preprocess


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess",
        help="decode and preprocess images into a data file for `int8kit test`",
        description="Resize the short side (Lanczos), centre crop, RGB, /255, CHW, mean/std - the seed's "
        "full_ILSVRC2012_val_preprocess.py steps - on all cores.",
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
    p.add_argument("--data-dim", type=int, default=224, help="crop size D")
    p.add_argument("--resize-size", type=int, default=256, help="short side after resizing")
    p.add_argument("--grayscale", action="store_true", help="one channel (L) instead of RGB, e.g. 28x28 models")
    p.add_argument("--mean", type=float, nargs="+", help="per-channel mean (default: ImageNet's; 0 for grayscale)")
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default: ImageNet's; 1 for grayscale)")
    p.add_argument(
        "--format",
        choices=("seed", "compact"),
        default="seed",
        help="seed: the seed's float32 layout; compact: uint8 pixels + header, 4x smaller",
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


def run(args: argparse.Namespace) -> int:
    channels = 1 if args.grayscale else 3
    mean = tuple(args.mean) if args.mean else ((0.0,) if args.grayscale else IMAGENET_MEAN)
    std = tuple(args.std) if args.std else ((1.0,) if args.grayscale else IMAGENET_STD)
    if len(mean) == 1 and channels == 3:
        mean = mean * 3
    if len(std) == 1 and channels == 3:
        std = std * 3
    spec = ImageSpec(data_dim=args.data_dim, resize_size=args.resize_size, grayscale=args.grayscale, mean=mean, std=std)
    config = PreprocessConfig(
        data_dir=args.data_dir,
        label_list=label_list_path(args.data_dir, args.label_list),
        output_file=args.output,
        spec=spec,
        format=args.format,
        skip_bad=args.skip_bad,
        workers=args.workers,
    )
    with progress("decoding", unit="images", enabled=not args.no_progress) as update:
        result = preprocess(config, progress=update)
    size = result.output_file.stat().st_size
    c, h, w = spec.shape
    print(
        f"wrote {result.written} images of {c}x{h}x{w} ({args.format} format, {size / 2**20:.1f} MiB) "
        f"to {result.output_file}"
    )
    if result.dropped:
        print(f"left out {len(result.dropped)} bad image(s):", file=sys.stderr)
        for bad in result.dropped:
            print(f"  {bad.path} (line {bad.line}): {bad.reason}", file=sys.stderr)
    return 0
