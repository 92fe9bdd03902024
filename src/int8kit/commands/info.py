"""`int8kit info`: what this machine offers int8kit (oneDNN version, CPU ISA flags)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show the oneDNN library, its version and the CPU's int8 features")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from int8kit.runtime import dnnl

    lib = dnnl.library()
    print(f"oneDNN {lib.version_string} from {lib.path}")
    print(f"CPU: {dnnl.cpu_model()}")
    print(f"ISA flags: {', '.join(dnnl.cpu_int8_features()) or 'none'}")
    return 0
