"""`int8kit classify`: top-k predictions for a folder or list of images, one CSV/Parquet row per image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from int8kit.commands._options import add_model, add_output, model_file
from int8kit.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageSpec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="predict the top-k classes of every image in a folder or list (CSV or Parquet rows)",
        description="Each image is preprocessed exactly as `int8kit preprocess` does (same flags); rows are "
        "written as batches finish. --ray-address runs it as a Ray Data pipeline instead.",
    )
    add_model(p, "ONNX model (FP32 or int8kit INT8) or a directory holding one", "--infer-model")
    p.add_argument("--input", type=Path, required=True, help="image folder, or a file listing one image per line")
    add_output(p, "preds.csv or preds.parquet")
    p.add_argument("--top-k", type=int, default=5, help="classes per row (default 5)")
    p.add_argument("--data-dim", type=int, default=224, help="crop size D (default 224)")
    p.add_argument("--resize-size", type=int, default=256, help="short side after resizing (default 256)")
    p.add_argument("--grayscale", action="store_true", help="one channel (L) instead of RGB, e.g. 28x28 models")
    p.add_argument("--mean", type=float, nargs="+", help="per-channel mean (default ImageNet's; 0 for grayscale)")
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default ImageNet's; 1 for grayscale)")
    p.add_argument("--batch-size", type=int, default=50, help="images per model call (default 50)")
    p.add_argument("--num-threads", type=int, default=1, help="OpenMP threads per stream or Ray actor (default 1)")
    p.add_argument("--streams", type=int, default=1, help="concurrent model calls in this process (default 1)")
    p.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    p.add_argument("--fail-on-bad-image", action="store_true", help="stop at the first missing/corrupt image")
    p.add_argument(
        "--ray-address",
        help="run on Ray: 'local' (start one here), 'auto' (the running cluster) or a ray:// / host:port address",
    )
    p.add_argument("--ray-actors", type=int, help="inference actors on Ray (default: cluster CPUs / --num-threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=run)


def image_spec(args: argparse.Namespace) -> ImageSpec:
    """The ImageSpec `int8kit preprocess` builds from the same flags (grayscale defaults: mean 0, std 1)."""
    channels = 1 if args.grayscale else 3
    mean = tuple(args.mean) if args.mean else ((0.0,) if args.grayscale else IMAGENET_MEAN)
    std = tuple(args.std) if args.std else ((1.0,) if args.grayscale else IMAGENET_STD)
    if len(mean) == 1 and channels == 3:
        mean = mean * 3
    if len(std) == 1 and channels == 3:
        std = std * 3
    return ImageSpec(data_dim=args.data_dim, resize_size=args.resize_size, grayscale=args.grayscale, mean=mean, std=std)


def run(args: argparse.Namespace) -> int:
    from int8kit.commands._progress import progress
    from int8kit.evaluate.classify import ClassifyConfig, classify

    config = ClassifyConfig(
        model=model_file(args.model),
        input=args.input,
        output=args.output,
        spec=image_spec(args),
        top_k=args.top_k,
        batch_size=args.batch_size,
        num_threads=args.num_threads,
        streams=args.streams,
        workers=args.workers,
        fail_on_bad_image=args.fail_on_bad_image,
    )

    def report_bad(path: str, reason: str) -> None:
        print(f"int8kit classify: skipped {path}: {reason}", file=sys.stderr)

    with progress("classifying", unit="images", enabled=not args.no_progress) as update:
        if args.ray_address:
            from int8kit.ray import classify_with_ray

            result = classify_with_ray(config, args.ray_address, actors=args.ray_actors, progress=update)
            for path, reason in result.bad:
                report_bad(path, reason)
        else:
            result = classify(config, progress=update, on_bad=report_bad)
    skipped = f", skipped {len(result.bad)} bad image(s)" if result.bad else ""
    print(f"wrote {result.rows} rows to {result.output}{skipped}")
    return 0
