"""`int8kit test`: the seed's sample_tester - time a model on a data file and report top-1/top-5."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from int8kit.evaluate.tester import TestConfig, TestResult, run_test


def add_test_options(p: argparse.ArgumentParser) -> None:
    """The tester options shared by `test` and `report` (the seed's names, in kebab-case)."""
    p.add_argument("--batch-size", type=int, default=50, help="images per batch (default 50)")
    p.add_argument("--iterations", type=int, default=0, help="timed batches; 0 = the whole file (default)")
    p.add_argument("--num-threads", type=int, default=1, help="CPU threads for the model (default 1)")
    p.add_argument("--warmup-iter", type=int, default=2, help="untimed batches first (default 2)")
    p.add_argument(
        "--with-accuracy-layer",
        action="store_true",
        help="the model takes (image, label) and outputs (scores, top-1, top-5) itself",
    )
    p.add_argument(
        "--optimize-fp32-model",
        action="store_true",
        help="let the backend fuse the FP32 graph (onnxruntime: all graph optimisations, else basic)",
    )
    p.add_argument("--backend", choices=("int8kit", "onnxruntime"), default="int8kit", help="engine (default int8kit)")


def config_from_args(args: argparse.Namespace, model: Path, backend: str | None = None) -> TestConfig:
    return TestConfig(
        model=model,
        data=args.infer_data,
        batch_size=args.batch_size,
        iterations=args.iterations,
        num_threads=args.num_threads,
        warmup_iter=args.warmup_iter,
        with_accuracy_layer=args.with_accuracy_layer,
        optimize_fp32_model=args.optimize_fp32_model,
        backend=backend or args.backend,
    )


def make_console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("test", help="time a model on a data file and report its top-1/top-5 accuracy")
    p.add_argument("--infer-model", type=Path, required=True, help="ONNX model (FP32 or int8kit INT8)")
    p.add_argument("--infer-data", type=Path, required=True, help="seed, compact or .npy data file")
    add_test_options(p)
    p.add_argument("--json", type=Path, help="also write the results, settings and environment here")
    p.set_defaults(func=run)


def print_result(result: TestResult) -> None:
    from rich.table import Table

    cfg = result.config
    console = make_console()
    console.print(f"--- {cfg.model} on {cfg.data} ({cfg.backend}) ---")
    console.print(
        f"threads: {cfg.num_threads}, batch size: {cfg.batch_size}, iterations: {result.iterations}, "
        f"warm-up: {cfg.warmup_iter}, images: {result.images}"
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
        ("top1 acc", "n/a" if result.top1 is None else f"{result.top1:.4f}"),
        ("top5 acc", "n/a" if result.top5 is None else f"{result.top5:.4f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def write_json(records: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    result = run_test(config_from_args(args, args.infer_model))
    print_result(result)
    if args.json:
        write_json(result.to_dict(), args.json)
        print(f"wrote {args.json}")
    return 0
