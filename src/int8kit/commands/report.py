"""`int8kit report`: test FP32 and INT8 models of each network and print the seed's comparison table."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.commands._options import add_data, write_json
from int8kit.commands.test import DATA_HELP, add_test_options, config_from_args, make_console, run_with_progress
from int8kit.errors import ModelError
from int8kit.evaluate.report import COLUMNS, Comparison, plot, require_matplotlib, write_csv


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="compare FP32 and INT8 models: accuracy, img/s and speed-up table",
        description="Run `int8kit test` on the FP32 and the INT8 model of each network and print PaddleSlim's "
        "comparison table (top-1/top-5 in percent, diffs in points, images/s, INT8/FP32), optionally as CSV "
        "(rounded), JSON (every result) and a PNG plot.",
    )
    p.add_argument(
        "--pair",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "FP32_MODEL", "INT8_MODEL"),
        help="a network's name and its two models (repeat for more networks)",
    )
    add_data(p, DATA_HELP, "--infer-data")
    add_test_options(p)
    backends = ("int8kit", "onnxruntime")
    p.add_argument("--fp32-backend", choices=backends, help="engine for FP32 (default: --backend)")
    p.add_argument("--int8-backend", choices=backends, help="engine for INT8 (default: --backend)")
    p.add_argument("--csv", type=Path, help="write the table here (default: none)")
    p.add_argument("--plot", type=Path, help="write a PNG bar chart here, needs matplotlib (default: none)")
    p.add_argument("--json", type=Path, help="write every test result here (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    console = make_console()
    if args.plot:  # fail before the long runs, not after them
        require_matplotlib()
    jobs = [
        (name, kind, config_from_args(args, Path(model), backend))
        for name, fp32_model, int8_model in args.pair
        for kind, model, backend in (("FP32", fp32_model, args.fp32_backend), ("INT8", int8_model, args.int8_backend))
    ]
    for _, _, config in jobs:  # every model is checked before the first long run, not after it
        if not config.model.is_file():
            raise ModelError(f"{config.model}: model file not found")
    results = []
    for step, (name, kind, config) in enumerate(jobs, 1):
        console.print(f"[{step}/{len(jobs)}] testing {name} {kind}: {config.model}")
        results.append(run_with_progress(config, f"{name} {kind}", enabled=not args.no_progress))
    comparisons = [
        Comparison(name, fp32, int8)
        for (name, _, _), fp32, int8 in zip(jobs[::2], results[::2], results[1::2], strict=True)
    ]

    table = Table(title=f"FP32 vs INT8 on {args.data}")
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
        console.print(f"wrote {write_json(records, args.json)}")
    return 0
