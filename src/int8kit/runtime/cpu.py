"""The CPU int8kit runs on: its name and int8/bf16 features (/proc/cpuinfo), and OpenMP's thread count.

oneDNN's wheel is built against GNU OpenMP, so the number of threads a primitive uses is libgomp's
per-thread setting: set here through libgomp itself (OMP_NUM_THREADS only applies at start-up). The
binding in runtime/dnnl.py stays the oneDNN C API alone.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from ctypes import c_int
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The flags that decide int8 (and bf16) speed: VNNI, AMX, avx512_bf16.
SPEED_FLAGS = ("avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "amx_tile")


def _cpuinfo_lines() -> list[str]:
    try:
        return CPUINFO.read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() elsewhere, else "unknown")."""
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """Every flag of the first CPU, as the kernel reports them."""
    return next((ln.split(":", 1)[1].split() for ln in _cpuinfo_lines() if ln.startswith("flags")), [])


def cpu_int8_features() -> list[str]:
    """The CPU flags that decide int8 speed (VNNI, AMX, bf16), in SPEED_FLAGS order."""
    flags = set(cpu_flags())
    return [f for f in SPEED_FLAGS if f in flags]


@functools.cache
def _gomp() -> ctypes.CDLL | None:
    try:
        g = ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None
    g.omp_set_num_threads.argtypes = [c_int]
    g.omp_get_max_threads.restype = c_int
    return g


def set_num_threads(n: int) -> None:
    """Set the OpenMP thread count of the calling thread (GNU OpenMP, which libdnnl uses)."""
    g = _gomp()
    if g is not None:
        g.omp_set_num_threads(int(n))


def get_num_threads() -> int:
    g = _gomp()
    return int(g.omp_get_max_threads()) if g is not None else 1
