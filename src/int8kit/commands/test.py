"""`int8kit test`: the seed's sample_tester - time a model on a data file and report top-1/top-5."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from int8kit.commands._options import add_bool_flag, add_data, add_model, model_file, write_json
from int8kit.commands._progress import progress
from int8kit.evaluate.tester import TestConfig, TestResult, run_test

DATA_HELP = "seed, compact or .npy data file (int8kit preprocess writes the first two)"


def add_test_options(p: argparse.ArgumentParser) -> None:
    """The tester options shared by `test` and `report` (the seed's names, in kebab-case)."""
    p.add_argument("--batch-size", type=int, default=50, help="images per batch")
    p.add_argument("--iterations", type=int, default=0, help="timed batches; 0 = the whole file")
    p.add_argument("--num-threads", type=int, default=1, help="CPU threads for the model")
    p.add_argument("--warmup-iter", type=int, default=2, help="untimed batches first")
    add_bool_flag(
        p,
        "--with-accuracy-layer",
        help="the model takes (image, label) and outputs (scores, top-1, top-5) itself (default: false)",
    )
    add_bool_flag(
        p,
        "--optimize-fp32-model",
        help="let the backend fuse the FP32 graph (onnxruntime: all graph optimisations, else basic; "
        "int8kit always fuses) (default: false)",
    )
    p.add_argument(
        "--backend",
        choices=("int8kit", "onnxruntime"),
        default="int8kit",
        help="engine (onnxruntime also runs QDQ models as they are)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="run the model's float convolutions and inner products in FP32 or bf16 (int8kit backend; bf16 "
        "needs AMX or avx512_bf16, else a warning and FP32) (default: fp32)",
    )


def config_from_args(args: argparse.Namespace, model: Path, backend: str | None = None) -> TestConfig:
    return TestConfig(
        model=model_file(model),
        data=args.data,
        batch_size=args.batch_size,
        iterations=args.iterations,
        num_threads=args.num_threads,
        warmup_iter=args.warmup_iter,
        with_accuracy_layer=args.with_accuracy_layer,
        optimize_fp32_model=args.optimize_fp32_model,
        backend=backend or args.backend,
        precision=getattr(args, "precision", "fp32"),
    )


def make_console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "test",
        help="time a model on a data file and report its top-1/top-5 accuracy",
        description="The seed's sample_tester: warm-up batches, then timed batches; prints batch and sample "
        "latency, images/s (from the images actually run), p50/p90/p99 batch latency and top-1/top-5 in percent. "
        "A directory as MODEL means the one .onnx file in it.",
    )
    add_model(p, "ONNX model (FP32 or int8kit INT8) or a directory holding one", "--infer-model")
    add_data(p, DATA_HELP, "--infer-data")
    add_test_options(p)
    p.add_argument("--streams", type=int, default=1, help="batches in flight, --num-threads each (int8kit backend)")
    add_precision(p)
    p.add_argument(
        "--json", type=Path, help="also write the results, settings, model hash and environment here (default: none)"
    )
    p.set_defaults(func=run)


def print_result(result: TestResult) -> None:
    from rich.table import Table

    cfg = result.config
    console = make_console()
    console.print(f"--- {cfg.model} on {cfg.data} ({cfg.backend}) ---")
    console.print(
        f"threads: {cfg.num_threads}, batch size: {cfg.batch_size}, iterations: {result.iterations}, "
        f"warm-up: {cfg.warmup_iter}, images: {result.images}, precision: {result.precision}"
        + (f" ({cfg.precision} requested: no bf16 kernels on this CPU)" if result.precision != cfg.precision else "")
    )
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("batch latency (ms)", f"{result.batch_latency_ms:.4f}"),
        ("sample latency (ms)", f"{result.sample_latency_ms:.4f}"),
        ("fps (img/s)", f"{result.fps:.2f}"),
        ("p50 batch latency (ms)", f"{result.p50_ms:.4f}"),
        ("p90 batch latency (ms)", f"{result.p90_ms:.4f}"),
        ("p99 batch latency (ms)", f"{result.p99_ms:.4f}"),
        ("top-1 accuracy (%)", "n/a" if result.top1 is None else f"{result.top1:.2f}"),
        ("top-5 accuracy (%)", "n/a" if result.top5 is None else f"{result.top5:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if result.nonfinite_images:
        console.print(f"warning: {result.nonfinite_images} image(s) hold NaN or inf values", style="yellow")


def run_with_progress(config: TestConfig, label: str, enabled: bool = True) -> TestResult:
    with progress(f"testing {label}", enabled=enabled) as update:
        return run_test(config, progress=update)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, args.model)
    if args.streams != 1:
        from int8kit.evaluate.stream_tester import run_stream_test

        with progress(f"testing {config.model.name}", enabled=not args.no_progress) as update:
            result = run_stream_test(config, args.streams, progress=update)
    else:
        result = run_with_progress(config, config.model.name, enabled=not args.no_progress)
    print_result(result)
    if args.json:
        write_json(result.to_dict(), args.json)
        print(f"wrote {args.json}")
    return 0
