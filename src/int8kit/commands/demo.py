"""`int8kit demo`: the whole seed workflow on the shipped example, one command.

Fashion-MNIST (Debian package `dataset-fashion-mnist`) is written out as an image folder plus
`val_list.txt`, exactly what users start from, and then every step runs as the CLI command a user
would type (each is printed first): preprocess -> quantize -> convert -> test FP32 vs INT8 -> report.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from int8kit.errors import DataError

# The shipped models live in the source tree (src/int8kit/commands/demo.py -> repository root); an installed
# (non-editable) int8kit has no examples/ beside it, so there the demo needs --models-dir.
REPO_MODELS_DIR = Path(__file__).resolve().parents[3] / "examples" / "models"
# The data: the Debian package's idx folder, normalised as the shipped models were trained
# (examples/fashion_mnist.py: the 60,000 training images' pixel mean and std).
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "apt-get install dataset-fashion-mnist"
MEAN = (0.2860405969887955,)
STD = (0.35302424451492237,)
DEFAULT_MODELS = ("fashion_mnist_resnet", "fashion_mnist_mobilenetv2")
DEFAULT_OUTPUT = Path("int8kit-demo")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run preprocess -> quantize -> convert -> test -> report on Fashion-MNIST",
        description="The whole seed workflow on the shipped Fashion-MNIST models, each step printed as the "
        "command a user would type. Runs from any directory; needs the Debian package dataset-fashion-mnist.",
    )
    p.add_argument(
        "-o",
        "--output",
        "--output-dir",
        "--workdir",
        dest="output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder everything is written to (relative to the current directory; .gitignore covers it)",
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help=f"folder of the FP32 models (default: the repository's examples/models, {REPO_MODELS_DIR})",
    )
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    p.add_argument("--limit", type=int, default=0, help="test images to use (default: 0 = all 10,000)")
    p.add_argument("--calib-images", type=int, default=300, help="training images written for calibration")
    p.add_argument("--method", default="minmax", help="calibration method")
    p.add_argument("--batch-size", type=int, default=50, help="images per batch for the report")
    p.add_argument("--num-threads", type=int, default=2, help="CPU threads for the report")
    p.set_defaults(func=run)


def _step(argv: list[str]) -> None:
    from int8kit.cli import main

    print(f"\n$ int8kit {shlex.join(argv)}", flush=True)
    status = main(argv)
    if status:
        raise SystemExit(status)


def write_image_folder(split: str, folder: Path, limit: int | None) -> Path:
    """Fashion-MNIST images as PNG files plus a `val_list.txt` of "path label" lines."""
    from PIL import Image

    from int8kit.data.idx import load_idx_split

    if not FASHION_MNIST.is_dir():
        raise DataError(f"{FASHION_MNIST}: Fashion-MNIST folder not found (install it with `{APT_HINT}`)")
    images, labels = load_idx_split(FASHION_MNIST, split)
    n = len(images) if limit is None else min(limit, len(images))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rel = f"images/{i:05d}.png"
        if not (folder / rel).exists():
            Image.fromarray(images[i]).save(folder / rel)
        lines.append(f"{rel} {int(labels[i])}\n")
    (folder / "val_list.txt").write_text("".join(lines))
    return folder


def run(args: argparse.Namespace) -> int:
    work = args.output
    models_dir = args.models_dir or REPO_MODELS_DIR
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    missing = [n for n in names if not (models_dir / f"{n}.onnx").exists()]
    if missing:
        raise DataError(f"{models_dir}: no model file for {', '.join(missing)} (give the folder with --models-dir)")
    print("writing Fashion-MNIST as image folders with val_list.txt ...", flush=True)
    test_dir = write_image_folder("test", work / "fmnist_test", limit=args.limit or None)
    calib_dir = write_image_folder("train", work / "fmnist_calib", limit=args.calib_images)
    norm = ["--grayscale", "--data-dim", "28", "--resize-size", "28", "--mean", str(MEAN[0]), "--std", str(STD[0])]
    for folder, out in ((test_dir, work / "test.bin"), (calib_dir, work / "calib.bin")):
        _step(
            [
                "preprocess",
                "--local",
                "--data-dir",
                str(folder),
                "--label-list",
                "val_list.txt",
                "--output",
                str(out),
                "--format",
                "compact",
                *norm,
            ]
        )
    pairs = []
    for name in names:
        fp32 = models_dir / f"{name}.onnx"
        qdq, int8 = work / f"{name}_qdq.onnx", work / f"{name}_int8.onnx"
        _step(
            [
                "quantize",
                str(fp32),
                "--data",
                str(work / "calib.bin"),
                "--output",
                str(qdq),
                "--method",
                args.method,
                "--num-samples",
                str(args.calib_images),
            ]
        )
        _step(["convert", str(qdq), "--output", str(int8)])
        pairs += ["--pair", name, str(fp32), str(int8)]
    _step(
        [
            "report",
            *pairs,
            "--data",
            str(work / "test.bin"),
            "--batch-size",
            str(args.batch_size),
            "--num-threads",
            str(args.num_threads),
            "--csv",
            str(work / "report.csv"),
            "--plot",
            str(work / "report.png"),
            "--json",
            str(work / "report.json"),
        ]
    )
    return 0
