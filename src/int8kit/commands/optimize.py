"""`int8kit optimize`: an FP32 model as the engine runs it (intake, then the fusions), with a .dot per pass.

The engine optimises an FP32 model when it loads it; this writes that graph out, so what `int8kit test`
times can be looked at (Netron, `--debug` graphs) and loaded again without optimising twice.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from int8kit.commands._options import add_model, add_output, model_file


def _stop_after(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="write an FP32 model optimised as the engine runs it (intake, fusions); --debug: a .dot per pass",
        description="Run int8kit's FP32 optimisation (intake, then the fusions to a fixed point) and write the "
        "result; the engine runs it as it is. Refuses (exit 2) models it cannot read.",
    )
    add_model(p, "FP32 ONNX model (or a Paddle model directory)")
    add_output(p, "the optimised .onnx to write")
    p.add_argument(
        "--debug",
        type=Path,
        metavar="DIR",
        help="write a Graphviz .dot of the graph after every pass into DIR (default: none)",
    )
    p.add_argument(
        "--stop-after",
        type=_stop_after,
        default=None,
        help="run only the first N passes, or up to the pass of that name (default: all)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from int8kit.ir.load import as_ir_model
    from int8kit.ir.optimize import optimize_fp32
    from int8kit.ir.save import save_model

    source = model_file(args.model)
    model = as_ir_model(source)
    before = len(model.graph)
    model = optimize_fp32(model, stop_after=args.stop_after, debug_dir=args.debug)
    save_model(model, args.output)
    ops = Counter(f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in model.graph)
    print(
        f"{source.name}: {before} nodes -> {len(model.graph)}: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
    )
    if args.debug:
        print(f"debug graphs: {args.debug}/*.dot (render with `dot -Tsvg`)")
    print(f"wrote {args.output}")
    return 0
