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
    features = dnnl.cpu_int8_features()
    print(f"ISA flags: {', '.join(features) or 'none'}")
    print(f"oneDNN dispatches up to: {dnnl.effective_isa()}")
    if "amx_int8" in features:
        print("INT8 kernels: AMX tiles (the fastest int8 path)")
    elif {"avx512_vnni", "avx_vnni"} & set(features):
        print("INT8 kernels: VNNI dot products (no AMX: about 4x FP32 at best on compute-bound convolutions)")
    else:
        print("INT8 kernels: no VNNI or AMX: expect little INT8 speed-up over FP32")
    return 0
