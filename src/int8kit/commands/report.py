"""`int8kit report`: test FP32 and INT8 models of each network and print the seed's comparison table."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.commands.test import add_test_options, config_from_args, make_console, write_json
from int8kit.evaluate.report import COLUMNS, Comparison, plot, require_matplotlib, write_csv
from int8kit.evaluate.tester import run_test


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare FP32 and INT8 models: accuracy, img/s and speed-up table")
    p.add_argument(
        "--pair",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "FP32_MODEL", "INT8_MODEL"),
        help="a network's name and its two models (repeat for more networks)",
    )
    p.add_argument("--infer-data", type=Path, required=True, help="seed, compact or .npy data file")
    add_test_options(p)
    p.add_argument("--fp32-backend", choices=("int8kit", "onnxruntime"), help="engine for FP32 (default --backend)")
    p.add_argument("--int8-backend", choices=("int8kit", "onnxruntime"), help="engine for INT8 (default --backend)")
    p.add_argument("--csv", type=Path, help="write the table here")
    p.add_argument("--plot", type=Path, help="write a PNG bar chart here (needs matplotlib)")
    p.add_argument("--json", type=Path, help="write every test result here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    console = make_console()
    if args.plot:  # fail before the long runs, not after them
        require_matplotlib()
    comparisons = []
    for name, fp32_model, int8_model in args.pair:
        results = []
        for kind, model, backend in (
            ("FP32", fp32_model, args.fp32_backend),
            ("INT8", int8_model, args.int8_backend),
        ):
            console.print(f"testing {name} {kind}: {model}")
            results.append(run_test(config_from_args(args, Path(model), backend)))
        comparisons.append(Comparison(name, *results))

    table = Table(title=f"FP32 vs INT8 on {args.infer_data}")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right")
    for c in comparisons:
        table.add_row(*c.formatted())
    console.print(table)
    if args.csv:
        console.print(f"wrote {write_csv(comparisons, args.csv)}")
    if args.plot:
        console.print(f"wrote {plot(comparisons, args.plot)}")
    if args.json:
        records = [{"name": c.name, "fp32": c.fp32.to_dict(), "int8": c.int8.to_dict()} for c in comparisons]
        write_json(records, args.json)
        console.print(f"wrote {args.json}")
    return 0
