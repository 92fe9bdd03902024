"""`int8kit compare`: per-layer SQNR between an FP32 model and its INT8 conversion, worst first."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="per-layer error (SQNR) of an INT8 model against its FP32 model")
    p.add_argument("fp32_model", type=Path, help="the FP32 ONNX model")
    p.add_argument("int8_model", type=Path, help="the INT8 model int8kit convert wrote")
    p.add_argument("--data", type=Path, required=True, help="input data: .npy, seed or compact data file")
    p.add_argument("--num-samples", type=int, default=32, help="images to compare on (default 32)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--top", type=int, default=0, help="show only the N worst layers (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from int8kit.data.open_data import open_dataset
    from int8kit.evaluate.layer_error import compare_layers

    data = open_dataset(args.data)
    n = min(args.num_samples, len(data))
    batches = (data.batch(i, min(args.batch_size, n - i)) for i in range(0, n, args.batch_size))
    errors = compare_layers(args.fp32_model, args.int8_model, batches, args.num_threads)
    table = Table(title=f"per-layer error, {args.int8_model.name} vs {args.fp32_model.name}, {n} images")
    for col in ("#id", "layer", "op", "runs", "SQNR dB", "cosine"):
        table.add_column(col, justify="right" if col in ("#id", "SQNR dB", "cosine") else "left")
    for e in errors[: args.top or None]:
        table.add_row(
            str(e.node_id),
            e.name,
            e.op_type,
            "INT8" if e.int8 else "FP32",
            f"{e.sqnr_db:.1f}",
            f"{e.cosine:.5f}",
        )
    Console(highlight=False).print(table)
    return 0
