"""`int8kit benchmark`: OpenVINO benchmark_app's measurement for an int8kit model (latency or throughput)."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.commands._options import add_data, add_model, model_file, write_json
from int8kit.commands.test import add_precision
from int8kit.errors import ConfigError


def _streams(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"streams must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="time a model like OpenVINO's benchmark_app: latency, or throughput with parallel streams",
        description="Run requests for --time seconds. latency: one stream of all cores, one request at a time. "
        "throughput: independent streams (cores / threads of them by default), each pinned to its own cores.",
    )
    add_model(p, "ONNX model (FP32 or int8kit INT8) or a directory holding one", "--infer-model")
    add_data(
        p,
        "seed, compact or .npy data file (default: random input of the model's shape)",
        "--infer-data",
        required=False,
    )
    p.add_argument("--batch-size", type=int, default=1, help="images per request (default 1)")
    p.add_argument("--mode", choices=("latency", "throughput"), default="throughput", help="(default throughput)")
    p.add_argument(
        "--streams",
        type=_streams,
        default=None,
        metavar="N|auto",
        help="concurrent requests; auto: cores / threads for throughput, 1 for latency (default auto)",
    )
    p.add_argument(
        "--num-threads", type=int, help="OpenMP threads per stream (default: 1 for throughput, all cores for latency)"
    )
    p.add_argument("--time", type=float, default=10.0, help="seconds to run (default 10)")
    p.add_argument("--niter", type=int, default=0, help="stop after this many requests instead (default: use --time)")
    p.add_argument("--no-pin", action="store_true", help="do not pin streams to cores")
    add_precision(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--json", type=Path, help="write throughput, latency, layout, ISA and environment here")
    p.set_defaults(func=run)


def print_result(result) -> None:
    from rich.table import Table

    from int8kit.commands.test import make_console

    cfg = result.config
    console = make_console()
    console.print(
        f"--- {cfg.model} ({cfg.mode} mode, batch {cfg.batch_size}, precision {result.precision}, ISA {result.isa}) ---"
    )
    console.print(
        f"streams: {result.streams} x {result.threads_per_stream} thread(s)"
        + (f" (each batch as {result.batch_parts} one-thread parts)" if result.batch_parts > 1 else "")
        + f", requests: {result.requests}, "
        f"images: {result.images}, duration: {result.duration_s:.2f} s"
    )
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("throughput (img/s)", f"{result.throughput_ips:.2f}")
    for key in ("median", "p90", "p99", "mean", "min", "max"):
        table.add_row(f"latency {key} (ms)", f"{result.latency_ms[key]:.3f}")
    console.print(table)


def run(args: argparse.Namespace) -> int:
    from int8kit.commands._progress import progress
    from int8kit.evaluate.benchmark import BenchmarkConfig, run_benchmark

    if args.num_threads is not None and args.num_threads < 1:
        raise ConfigError(f"num-threads must be at least 1, got {args.num_threads}")
    config = BenchmarkConfig(
        model=model_file(args.model),
        data=args.data,
        batch_size=args.batch_size,
        mode=args.mode,
        streams=args.streams,
        num_threads=args.num_threads,
        time_s=args.time,
        niter=args.niter,
        pin=not args.no_pin,
        precision=args.precision,
    )
    unit = "requests" if config.niter else "seconds"
    with progress("benchmarking", unit=unit, enabled=not args.no_progress) as update:
        result = run_benchmark(config, progress=lambda done, total: update(round(done, 1), total))
    print_result(result)
    if args.json:
        print(f"wrote {write_json(result.to_dict(), args.json)}")
    return 0
