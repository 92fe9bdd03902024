"""`int8kit info`: what this machine offers int8kit (oneDNN version, CPU ISA flags)."""

from __future__ import annotations

import argparse
from pathlib import Path

from int8kit.commands._options import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the oneDNN library, its version and the CPU's int8 features",
        description="Which oneDNN int8kit loaded, the CPU, its int8 ISA flags (VNNI, AMX) and the ISA oneDNN "
        "dispatches to: what INT8 speed-ups to expect here.",
    )
    p.add_argument("--json", type=Path, help="also write the same facts here (default: none)")
    p.set_defaults(func=run)


def kernels_note(isa: str) -> str:
    """What INT8 Conv/Dense run on at the ISA oneDNN dispatches to (ONEDNN_MAX_CPU_ISA included)."""
    from int8kit.runtime.precision import EXACT_INT8_ISAS

    if "amx" in isa:
        return "AMX tiles (the fastest int8 path)"
    if isa in EXACT_INT8_ISAS:
        return "VNNI dot products (no AMX: about 4x FP32 at best on compute-bound convolutions)"
    return (
        f"no VNNI or AMX ({isa}): oneDNN's int8 convolutions and inner products saturate here, so INT8 Conv "
        "and Dense run f32 kernels over the dequantized values: the QDQ file's results, no INT8 speed-up"
    )


def bf16_note(isa: str) -> str:
    from int8kit.runtime.precision import BF16_ISAS

    if isa in BF16_ISAS:
        return f"available ({isa}): --precision bf16 runs native bf16 convolutions and inner products"
    return f"not available (oneDNN dispatches up to {isa}; needs avx512_bf16 or AMX): --precision bf16 runs FP32"


def run(args: argparse.Namespace) -> int:
    from int8kit import __version__
    from int8kit.runtime import cpu, dnnl

    lib = dnnl.library()
    features = cpu.cpu_int8_features()
    facts = {
        "int8kit": __version__,
        "onednn_version": lib.version_string,
        "onednn_library": str(lib.path),
        "cpu": cpu.cpu_model(),
        "isa_flags": features,
        "onednn_isa": dnnl.effective_isa(),
    }
    facts["int8_kernels"] = kernels_note(facts["onednn_isa"])
    facts["bf16_kernels"] = bf16_note(facts["onednn_isa"])
    print(f"oneDNN {lib.version_string} from {lib.path}")
    print(f"CPU: {facts['cpu']}")
    print(f"ISA flags: {', '.join(features) or 'none'}")
    print(f"oneDNN dispatches up to: {facts['onednn_isa']}")
    print(f"INT8 kernels: {facts['int8_kernels']}")
    print(f"bf16 kernels: {facts['bf16_kernels']}")
    if args.json:
        print(f"wrote {write_json(facts, args.json)}")
    return 0
