"""`int8kit quantize`: post-training calibration of an FP32 ONNX model into a standard QDQ model."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from int8kit.commands._options import add_data, add_model, add_output, write_json
from int8kit.commands._progress import duration, progress
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
        "ReLU-like ops and s8 elsewhere, written as an ONNX QDQ model onnxruntime runs as is. With "
        "--max-accuracy-drop the exit status is 1 when the budget is not met (the model with the most layers "
        "out of INT8 is still written).",
    )
    add_model(p, "FP32 ONNX model")
    add_data(p, "calibration images: .npy (N, C, H, W float32, normalised) or a preprocess data file", "--calib-data")
    add_output(p, "where to write the QDQ model")
    p.add_argument("--method", choices=METHODS, default="minmax", help="range calibration")
    p.add_argument("--num-samples", type=int, default=300, help="images sampled for calibration")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--batch-size", type=int, default=8, help="images per calibration batch")
    p.add_argument("--percentile", type=float, default=99.99, help="for --method percentile")
    p.add_argument(
        "--ops-to-quantize",
        type=_names,
        default=(),
        help="comma-separated ONNX op types to put Q/DQ around (default: all of "
        f"{','.join(SUPPORTED_OPS)}); the same names convert's --ops-to-quantize takes",
    )
    p.add_argument(
        "--exclude-nodes", type=_names, default=(), help="comma-separated node names to keep FP32 (default: none)"
    )
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    p.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="keep the biases as trained (default: remove the mean output shift the rounded weights cause)",
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="engine for FP32 activations")
    p.add_argument("--num-threads", type=int, default=None, help="threads for the calibration runs (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="take the worst layers (by SQNR) out of INT8, searched by bisection, until top-1 is within this many "
        "points of FP32 (needs labelled --eval-data; default: no budget)",
    )
    p.add_argument(
        "--eval-data", type=Path, default=None, help="labelled data for --max-accuracy-drop (default: --data)"
    )
    p.add_argument("--eval-samples", type=int, default=2000, help="images for --max-accuracy-drop")
    p.add_argument(
        "--fallback",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="where layers leaving INT8 run: auto = bf16 where the CPU has bf16 kernels, then FP32",
    )
    p.add_argument(
        "--json", type=Path, help="also write the calibration table (and budget rounds) here (default: none)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from int8kit.ir.save import save_model
    from int8kit.quantize import QuantizeConfig, quantize_with_report
    from int8kit.quantize.api import check_output_path
    from int8kit.scope import Scope

    check_output_path(args.output)  # before minutes of calibration

    config = QuantizeConfig(
        method=args.method,
        num_samples=args.num_samples,
        seed=args.seed,
        batch_size=args.batch_size,
        percentile=args.percentile,
        scope=Scope(op_types=args.ops_to_quantize, exclude_nodes=args.exclude_nodes),
        per_channel=not args.per_tensor,
        bias_correction=not args.no_bias_correction,
        backend=args.backend,
        num_threads=args.num_threads,
    )
    with progress("calibrating", unit="images", enabled=not args.no_progress) as update:
        result = quantize_with_report(args.model, args.data, config, progress=update)
    qdq = result.model
    _print_summary(result, args.output)
    budget = None
    if args.max_accuracy_drop is not None:
        budget = _fit_budget(args, result)
        qdq = budget.model
    save_model(qdq, args.output)
    if budget is not None and budget.bf16_layers:
        # The QDQ file says what is float; which float layers run bf16 is the converter's option.
        print(f"convert it as measured: int8kit convert {args.output} --bf16-nodes {','.join(budget.bf16_layers)}")
    if args.json:
        print(f"wrote {write_json(_record(args, result, budget), args.json)}")
    if budget is not None and not budget.met:
        print(
            f"int8kit quantize: error: top-1 drop {budget.chosen.drop:.2f} points is over the budget of "
            f"{args.max_accuracy_drop}; {args.output} keeps {len(budget.chosen.fallback)} layer(s) out of INT8 "
            "and is written anyway",
            file=sys.stderr,
        )
        return 1
    return 0


def _fit_budget(args: argparse.Namespace, quantized):
    """The accuracy budget: one line per round (what left INT8, top-1, drop, an ETA), then the verdict and speed."""
    from int8kit.budget import BudgetConfig, fit_accuracy_budget
    from int8kit.data.open_data import open_dataset

    config = BudgetConfig(
        max_drop=args.max_accuracy_drop,
        eval_samples=args.eval_samples,
        num_threads=args.num_threads,
        fallback=args.fallback,
    )

    data = open_dataset(args.eval_data or args.data)
    eval_images = min(config.eval_samples, len(data))

    def show(r) -> None:
        where = f"{len(r.fallback)} layer(s) to {r.precision}" if r.fallback else "all INT8"
        seen = "" if r.images == eval_images else f" on the first {r.images} images (out of reach: stopped)"
        line = (
            f"round {r.index}: {where}, top-1 {r.top1:.2f}%{seen}, drop {r.drop:+.2f} points "
            f"({'within' if r.passed else 'over'} {args.max_accuracy_drop}), {duration(r.seconds)}"
        )
        if r.rounds_left:
            per_round = r.elapsed / r.index
            line += f"; at most {r.rounds_left} more (ETA <= {duration(r.rounds_left * per_round)})"
        print(line, flush=True)

    result = fit_accuracy_budget(quantized.fp32, quantized.model, data, config, on_round=show)
    verdict = "within" if result.met else "NOT within"
    total = len(result.ranking)
    print(
        f"FP32 top-1 {result.fp32_top1:.2f}%, full INT8 {result.int8_top1:.2f}%, chosen {result.chosen.top1:.2f}%: "
        f"{verdict} the budget of {args.max_accuracy_drop} points in {len(result.rounds)} rounds"
    )
    print(
        f"{total} ranked layers: {len(result.int8_layers)} INT8, {len(result.bf16_layers)} bf16"
        + (f" ({', '.join(result.bf16_layers)})" if result.bf16_layers else "")
        + f", {len(result.fp32_layers)} FP32"
        + (f" ({', '.join(result.fp32_layers)})" if result.fp32_layers else "")
    )
    if result.speed is not None:
        s = result.speed
        print(
            f"speed on one batch of {s.batch}: chosen model {s.mixed:,.0f} images/s = {s.mixed / s.fp32:.2f}x FP32 "
            f"({s.fp32:,.0f} images/s), {s.mixed / s.int8:.2f}x full INT8 ({s.int8:,.0f} images/s)"
        )
    return result


def _record(args: argparse.Namespace, result, budget) -> dict:
    """The calibration table (and the budget's rounds) as JSON."""
    record = {
        "model": str(args.model),
        "output": str(args.output),
        "method": result.config.method,
        "num_samples": result.num_samples,
        "tensors": [
            {"name": t.name, "dtype": t.qparams.dtype, "min": t.lo, "max": t.hi, "scale": t.qparams.scale}
            for t in result.tensors
        ],
        "int8_weights": len({spec.name for _, _, spec in result.plan.weight_uses}),
        "quantized_nodes": list(result.plan.quantized_nodes),
        "excluded_nodes": list(result.plan.excluded_nodes),
    }
    if budget is not None:
        record["accuracy_budget"] = {
            "max_drop": args.max_accuracy_drop,
            "met": budget.met,
            "fp32_top1": budget.fp32_top1,
            "int8_top1": budget.int8_top1,
            "ranking": [{"layer": name, "sqnr_db": _json_number(db)} for name, db in budget.ranking],
            "rounds": [
                {
                    "precision": r.precision,
                    "fallback": list(r.fallback),
                    "top1": r.top1,
                    "drop": r.drop,
                    "seconds": r.seconds,
                }
                for r in budget.rounds
            ],
            "layers": {
                "int8": list(budget.int8_layers),
                "bf16": list(budget.bf16_layers),
                "fp32": list(budget.fp32_layers),
            },
            "speed_images_per_s": None if budget.speed is None else dataclasses.asdict(budget.speed),
        }
    return record


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _print_summary(result, output: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"calibrated activations ({result.config.method}, {result.num_samples} samples)")
    for col in ("tensor", "type", "range min", "range max", "scale", "zero point"):
        table.add_column(col, justify="left" if col == "tensor" else "right")
    for t in result.tensors:
        q = t.qparams
        table.add_row(t.name, q.dtype, f"{t.lo:.4g}", f"{t.hi:.4g}", f"{q.scale:.4g}", str(q.zero_point))
    console = Console()
    console.print(table)
    u8 = sum(t.qparams.dtype == "uint8" for t in result.tensors)
    with_zero_point = sum(bool(t.qparams.zero_point) for t in result.tensors)
    weights = len({spec.name for _, _, spec in result.plan.weight_uses})
    print(
        f"{len(result.tensors)} tensors calibrated ({u8} u8, {len(result.tensors) - u8} s8, "
        f"{with_zero_point} with a zero point), "
        f"{weights} int8 weights, {len(result.plan.quantized_nodes)} nodes quantized"
        + (f", {len(result.plan.excluded_nodes)} excluded" if result.plan.excluded_nodes else "")
        + f"; wrote {output}"
    )
