"""`int8kit convert`: the seed's save_quant_model.py - a QDQ (fake-quant) model to a real INT8 model."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from int8kit.commands._options import add_model, add_output, int8_output_path, model_file, write_json

# The lowercase kinds --ops-to-quantize took before it took ONNX op types; still accepted on the command
# line, each as the Scope rule it meant ("conv" was the non-depthwise convolutions).
LEGACY_KINDS = {
    "conv": "Conv[!depthwise]",
    "depthwise_conv": "Conv[depthwise]",
    "gemm": "Gemm|MatMul",
    "matmul": "Gemm|MatMul",
    "fc": "Gemm|MatMul",
    "maxpool": "MaxPool",
    "avgpool": "AveragePool",
    "globalavgpool": "GlobalAveragePool",
    "concat": "Concat",
    "reshape": "Reshape|Flatten|Squeeze|Unsqueeze",
    "transpose": "Transpose",
    "split": "Split|Slice",
    "add": "Add",
    "mul": "Mul",
    "affine": "BatchNormalization",
}


def _op_types(text: str) -> tuple[str, ...]:
    """ONNX op type rules (Conv, Conv[depthwise], Gemm|MatMul), or the legacy lowercase kinds."""
    return tuple(LEGACY_KINDS.get(t.strip(), t.strip()) for t in text.split(",") if t.strip())


def _names(text: str) -> frozenset[str]:
    return frozenset(t.strip() for t in text.split(",") if t.strip())


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated op ids, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    from int8kit.convert.config import CONVERT_OP_TYPES

    p = sub.add_parser(
        "convert",
        help="turn a QDQ (fake-quant) ONNX model into an int8kit INT8 model",
        description="PaddleSlim's save_quant_model.py for ONNX: read the scales of the Q/DQ pairs, remove "
        "them, fuse, place INT8 ops and write a real INT8 model for `int8kit test`. Refuses (exit 2) models "
        "without Q/DQ, already converted models and bad scales.",
    )
    add_model(p, "QDQ ONNX model (int8kit quantize/qat, onnxruntime, NNCF...)", "--quant-model-path")
    add_output(
        p,
        "the INT8 .onnx to write, or a directory (or any name without .onnx) to write <model>_int8.onnx into, "
        "<model> being the QDQ file's name without .onnx and a trailing _qdq (as the reference's "
        "--int8_model_save_path takes a directory)",
        "--int8-model-save-path",
    )
    p.add_argument(
        "--ops-to-quantize",
        type=_op_types,
        default=(),
        help="comma-separated ONNX op types to run in INT8, others stay FP32 (default: all): "
        f"{', '.join(CONVERT_OP_TYPES)}, the same names as quantize's --ops-to-quantize; Conv includes "
        "depthwise convolutions, Conv[depthwise] / Conv[!depthwise] name them apart",
    )
    p.add_argument(
        "--exclude-nodes",
        type=_names,
        default=frozenset(),
        help="comma-separated node names to keep in FP32 (default: none)",
    )
    p.add_argument(
        "--op-ids-to-skip",
        type=_ids,
        default=(),
        help="comma-separated op ids to keep in FP32, ids as --debug draws them (default: none)",
    )
    p.add_argument(
        "--bf16-nodes",
        type=_names,
        default=frozenset(),
        help="comma-separated names (as in the QDQ model) of Conv/Gemm/MatMul nodes the QDQ file leaves float, "
        "to run in bf16 instead of FP32 on CPUs with AMX or avx512_bf16 (default: none)",
    )
    p.add_argument(
        "--bf16-op-ids",
        type=_ids,
        default=(),
        help="the same by op ids, as --debug draws them (default: none)",
    )
    p.add_argument(
        "--debug",
        type=Path,
        metavar="DIR",
        help="write a Graphviz .dot of the graph after every pass into DIR (default: none)",
    )
    p.add_argument("--json", type=Path, help="also write the conversion summary here (default: none)")
    p.set_defaults(func=run)


def summary_record(summary, source: Path, output: Path) -> dict:
    """The conversion summary as JSON: ops per type in INT8/FP32, why each FP32 op is FP32, warnings."""
    return {
        "quant_model": str(source),
        "int8_model": str(output),
        "ops": [{"op_type": op, "int8": i, "fp32": f} for op, i, f in summary.rows()],
        "int8_compute_ops": summary.int8_compute_ops,
        "conversions": dict(sorted(summary.conversions.items())),
        "fp32_ops": [dataclasses.asdict(op) for op in summary.fp32_reasons],
        "isolated_int8_ops": list(summary.isolated),
        "fusions": {r.pass_name: len(r.fused) for r in summary.fusions},
        "notes": summary.notes(),
    }


def bf16_nodes(model) -> list[str]:
    """Names of the converted model's nodes marked to run bf16 (convert.mark_bf16)."""
    from int8kit.convert.mark_bf16 import PRECISION_ATTR

    return [
        n.name for n in model.graph if PRECISION_ATTR in n.attributes and n.attributes[PRECISION_ATTR].value == "bf16"
    ]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from int8kit.convert.config import ConvertConfig
    from int8kit.convert.pipeline import convert
    from int8kit.ir.check_supported import check_supported
    from int8kit.ir.save import save_model
    from int8kit.runtime.lowering import supported_ops
    from int8kit.scope import Scope

    source = model_file(args.model)
    output = int8_output_path(args.output, source)
    scope = Scope(
        op_types=args.ops_to_quantize, exclude_nodes=tuple(sorted(args.exclude_nodes)), exclude_ids=args.op_ids_to_skip
    )
    config = ConvertConfig(
        scope=scope,
        debug_dir=args.debug,
        bf16_nodes=args.bf16_nodes,
        bf16_op_ids=args.bf16_op_ids,
    )
    if args.debug:
        args.debug.mkdir(parents=True, exist_ok=True)
    result = convert(source, config)
    check_supported(result.model, supported_ops())  # a file the engine cannot run is not written
    save_model(result.model, output)  # whole or not at all
    s = result.summary
    console = Console(highlight=False)
    table = Table(title=f"{source.name} -> {output}")
    table.add_column("op type")
    table.add_column("INT8", justify="right")
    table.add_column("FP32", justify="right")
    for op, int8, fp32 in s.rows():
        table.add_row(op, str(int8), str(fp32))
    console.print(table)
    for line in s.notes():
        console.print(line, style="yellow" if line.startswith("warning") else None)
    bf16 = bf16_nodes(result.model)
    if bf16:
        console.print(f"bf16 (instead of FP32): {len(bf16)} op(s): {', '.join(bf16)}")
    if args.debug:
        console.print(f"debug graphs: {args.debug}/*.dot (render with `dot -Tsvg`)")
    console.print(f"wrote {output}")
    if args.json:
        record = summary_record(s, source, output) | {"bf16_ops": bf16}
        console.print(f"wrote {write_json(record, args.json)}")
    return 0
