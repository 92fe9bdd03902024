"""`int8kit convert`: the seed's save_quant_model.py - a QDQ (fake-quant) model to a real INT8 model."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.errors import ConfigError


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in text.split(",") if t.strip())


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated op ids, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    from int8kit.convert.config import OP_KINDS

    p = sub.add_parser("convert", help="turn a QDQ (fake-quant) ONNX model into an int8kit INT8 model")
    p.add_argument("--quant-model-path", type=Path, required=True, help="QDQ ONNX model (int8kit, onnxruntime...)")
    p.add_argument("--int8-model-save-path", type=Path, required=True, help="where to write the INT8 .onnx")
    p.add_argument(
        "--ops-to-quantize",
        type=_csv,
        default=(),
        help=f"comma-separated op kinds to run in INT8 (default: all): {', '.join(OP_KINDS)}",
    )
    p.add_argument(
        "--op-ids-to-skip",
        type=_ids,
        default=(),
        help="comma-separated op ids to keep in FP32 (ids as drawn by --debug)",
    )
    p.add_argument(
        "--debug",
        type=Path,
        metavar="DIR",
        help="write a Graphviz .dot of the graph after every pass into DIR",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from int8kit.convert.config import ConvertConfig
    from int8kit.convert.pipeline import convert, save

    if args.int8_model_save_path.suffix != ".onnx":
        raise ConfigError(f"--int8-model-save-path {args.int8_model_save_path}: expected a .onnx file name")
    config = ConvertConfig(args.ops_to_quantize, args.op_ids_to_skip, args.debug)
    if args.debug:
        args.debug.mkdir(parents=True, exist_ok=True)
    result = convert(args.quant_model_path, config)
    args.int8_model_save_path.parent.mkdir(parents=True, exist_ok=True)
    save(result.model, args.int8_model_save_path)
    s = result.summary
    console = Console(highlight=False)
    table = Table(title=f"{args.quant_model_path.name} -> {args.int8_model_save_path}")
    table.add_column("op type")
    table.add_column("INT8", justify="right")
    table.add_column("FP32", justify="right")
    for op, int8, fp32 in s.rows():
        table.add_row(op, str(int8), str(fp32))
    console.print(table)
    for line in s.notes():
        console.print(line, style="yellow" if line.startswith("warning") else None)
    if args.debug:
        console.print(f"debug graphs: {args.debug}/*.dot (render with `dot -Tsvg`)")
    return 0
