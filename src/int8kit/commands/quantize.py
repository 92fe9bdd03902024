"""`int8kit quantize`: post-training calibration of an FP32 ONNX model into a standard QDQ model."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.quantize.calibrate import BACKENDS
from int8kit.quantize.observers import METHODS
from int8kit.quantize.plan import SUPPORTED_OPS


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize",
        help="calibrate an FP32 ONNX model on sample data and write a QDQ model (int8 weights)",
        description="Post-training quantization: symmetric s8 per-channel weights, u8 activations after "
        "ReLU-like ops and s8 elsewhere, written as an ONNX QDQ model onnxruntime runs as is.",
    )
    p.add_argument("model", type=Path, help="FP32 ONNX model")
    p.add_argument(
        "--calib-data",
        required=True,
        type=Path,
        help="calibration images: .npy (N, C, H, W float32, normalised) or a preprocess data file",
    )
    p.add_argument("--output", "-o", required=True, type=Path, help="where to write the QDQ model")
    p.add_argument("--method", choices=METHODS, default="minmax", help="range calibration (default: minmax)")
    p.add_argument("--num-samples", type=int, default=300, help="images sampled for calibration (300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (0)")
    p.add_argument("--batch-size", type=int, default=8, help="images per calibration batch (8)")
    p.add_argument("--percentile", type=float, default=99.99, help="for --method percentile (99.99)")
    p.add_argument(
        "--ops-to-quantize",
        type=_names,
        default=(),
        help=f"comma-separated op types to quantize (default: all of {','.join(SUPPORTED_OPS)})",
    )
    p.add_argument("--exclude-nodes", type=_names, default=(), help="comma-separated node names to keep FP32")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="engine for FP32 activations")
    p.add_argument("--num-threads", type=int, default=None, help="threads for the calibration runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="keep the worst layers FP32 until INT8 top-1 is within this many points of FP32 "
        "(needs labelled --eval-data)",
    )
    p.add_argument(
        "--eval-data", type=Path, default=None, help="labelled data for --max-accuracy-drop (default: --calib-data)"
    )
    p.add_argument("--eval-samples", type=int, default=2000, help="images for --max-accuracy-drop (2000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from int8kit.quantize import QuantizeConfig, quantize, save_model
    from int8kit.quantize.calibrate import rich_progress

    config = QuantizeConfig(
        method=args.method,
        num_samples=args.num_samples,
        seed=args.seed,
        batch_size=args.batch_size,
        percentile=args.percentile,
        op_types=args.ops_to_quantize or SUPPORTED_OPS,
        exclude_nodes=args.exclude_nodes,
        per_channel=not args.per_tensor,
        backend=args.backend,
        num_threads=args.num_threads,
    )
    progress, close = (None, lambda: None) if args.no_progress else rich_progress()
    try:
        result = quantize(args.model, args.calib_data, config, progress=progress)
    finally:
        close()
    qdq = result.model
    _print_summary(result, args.output)
    if args.max_accuracy_drop is not None:
        qdq = _fit_budget(args, qdq)
    save_model(qdq, args.output)
    return 0


def _fit_budget(args: argparse.Namespace, qdq):
    from int8kit.data.open_data import open_dataset
    from int8kit.quantize.accuracy_budget import fit_accuracy_budget

    def show(r) -> None:
        kept = ", ".join(r.kept_fp32) or "none"
        print(f"FP32 layers: {kept:40s} INT8 top-1 {r.int8_top1:6.2f}%  drop {r.drop:+.2f}")

    data = open_dataset(args.eval_data or args.calib_data)
    result = fit_accuracy_budget(
        args.model,
        qdq,
        data,
        args.max_accuracy_drop,
        eval_samples=args.eval_samples,
        num_threads=args.num_threads,
        on_round=show,
    )
    last = result.rounds[-1]
    verdict = "within" if result.met else "NOT within"
    print(
        f"FP32 top-1 {result.fp32_top1:.2f}%, INT8 top-1 {last.int8_top1:.2f}%: {verdict} the budget of "
        f"{args.max_accuracy_drop} points with {len(last.kept_fp32)} layer(s) kept FP32"
    )
    return result.model


def _print_summary(result, output: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"calibrated activations ({result.config.method}, {result.num_samples} samples)")
    for col in ("tensor", "type", "range min", "range max", "scale"):
        table.add_column(col, justify="left" if col == "tensor" else "right")
    for t in result.tensors:
        table.add_row(t.name, t.qparams.dtype, f"{t.lo:.4g}", f"{t.hi:.4g}", f"{t.qparams.scale:.4g}")
    console = Console()
    console.print(table)
    u8 = sum(t.qparams.dtype == "uint8" for t in result.tensors)
    weights = len({spec.name for _, _, spec in result.plan.weight_uses})
    print(
        f"{len(result.tensors)} tensors calibrated ({u8} u8, {len(result.tensors) - u8} s8), "
        f"{weights} int8 weights, {len(result.plan.quantized_nodes)} nodes quantized"
        + (f", {len(result.plan.excluded_nodes)} excluded" if result.plan.excluded_nodes else "")
        + f"; wrote {output}"
    )
