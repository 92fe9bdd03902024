"""What a benchmark number depends on: the CPU (runtime.cpu), the core count and the library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform

from int8kit.runtime.cpu import cpu_model

DISTRIBUTIONS = ("int8kit", "numpy", "onnx", "onnxruntime", "pillow", "onednn-cpu-gomp")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def onednn() -> dict[str, str]:
    """The oneDNN build and the instruction set it dispatches to here (what the INT8 speed depends on)."""
    try:
        from int8kit.runtime import dnnl

        return {"onednn_version": dnnl.library().version_string, "onednn_isa": dnnl.effective_isa()}
    except Exception as exc:  # noqa: BLE001 - a missing/broken oneDNN must not stop an onnxruntime test
        return {"onednn_version": "unavailable", "onednn_isa": f"unavailable ({exc})"}


def environment() -> dict[str, object]:
    """A JSON-ready record of the machine and software a result was measured on."""
    versions = library_versions()
    return {
        "int8kit": versions["int8kit"],
        **onednn(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "env": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "ONEDNN_MAX_CPU_ISA") if k in os.environ
        },
    }
