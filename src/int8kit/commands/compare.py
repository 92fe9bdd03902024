"""`int8kit compare`: per-layer SQNR between an FP32 model and its INT8 conversion, worst first."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from int8kit.commands._options import add_data, model_file, write_json
from int8kit.commands._progress import progress


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="per-layer error (SQNR) of an INT8 model against its FP32 model",
        description="Run both models on the same images with every fused Conv/Dense output exposed and list "
        "each layer's SQNR (dB) and cosine, INT8 against FP32, worst first: the layers worth keeping in FP32 "
        "(convert --op-ids-to-skip takes the #id column).",
    )
    p.add_argument("fp32_model", type=Path, help="the FP32 ONNX model (or a directory holding one)")
    p.add_argument("int8_model", type=Path, help="the INT8 model int8kit convert wrote (or its directory)")
    add_data(p, "input data: .npy, seed or compact data file")
    p.add_argument("--num-samples", type=int, default=32, help="images to compare on")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch")
    p.add_argument("--num-threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--top", type=int, default=0, help="show only the N worst layers (default: 0 = all)")
    p.add_argument("--json", type=Path, help="also write every layer's numbers here (default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=run)


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # JSON has no inf: "inf" (identical outputs)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from int8kit.data.open_data import open_dataset
    from int8kit.evaluate.layer_error import compare_layers

    fp32_model, int8_model = model_file(args.fp32_model), model_file(args.int8_model)
    data = open_dataset(args.data)
    n = min(args.num_samples, len(data))
    starts = range(0, n, args.batch_size)
    with progress(f"comparing {int8_model.name}", enabled=not args.no_progress) as update:

        def batches():
            for done, i in enumerate(starts):
                yield data.batch(i, min(args.batch_size, n - i))
                update(done + 1, len(starts))

        errors = compare_layers(fp32_model, int8_model, batches(), args.num_threads)
    table = Table(title=f"per-layer error, {int8_model.name} vs {fp32_model.name}, {n} images")
    for col in ("#id", "layer", "op", "runs", "SQNR dB", "cosine"):
        table.add_column(col, justify="right" if col in ("#id", "SQNR dB", "cosine") else "left")
    shown = errors[: args.top or None]
    for e in shown:
        table.add_row(
            str(e.node_id),
            e.name,
            e.op_type,
            "INT8" if e.int8 else "FP32",
            f"{e.sqnr_db:.1f}",
            f"{e.cosine:.5f}",
        )
    Console(highlight=False).print(table)
    if args.json:
        record = {
            "fp32_model": str(fp32_model),
            "int8_model": str(int8_model),
            "data": str(args.data),
            "images": n,
            "layers": [
                {**dataclasses.asdict(e), "sqnr_db": _json_number(e.sqnr_db), "cosine": _json_number(e.cosine)}
                for e in errors
            ],
        }
        print(f"wrote {write_json(record, args.json)}")
    return 0
