"""Streams: Python threads that each drive their own OpenMP team, pinned to disjoint cores where the OS allows.

This is OpenVINO's THROUGHPUT mode for the int8kit runtime: instead of one team of all cores meeting at a
barrier after every layer, `n` independent requests run at once, each on `threads` cores. The ctypes calls
into oneDNN release the GIL, so Python threads are enough to drive them.

GNU OpenMP gives every OS thread that starts a parallel region its own team, and the team's workers are
created by that thread, so they inherit its CPU affinity (libgomp binds them itself only when
OMP_PROC_BIND / OMP_PLACES / GOMP_CPU_AFFINITY are set; then those win and nothing is pinned here). Each
stream thread therefore pins itself with `os.sched_setaffinity(0, cores)` (0 = the calling thread on Linux)
before its first OpenMP region.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from int8kit.errors import ConfigError
from int8kit.runtime import cpu

logger = logging.getLogger(__name__)

T = TypeVar("T")

_LIBGOMP_BINDING_VARS = ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY")


@dataclass(frozen=True)
class StreamConfig:
    """How many concurrent streams, OpenMP threads per stream, and whether to pin them to cores."""

    streams: int = 1
    threads_per_stream: int = 1
    pin: bool = True

    def __post_init__(self) -> None:
        if self.streams < 1:
            raise ConfigError(f"streams must be at least 1, got {self.streams}")
        if self.threads_per_stream < 1:
            raise ConfigError(f"threads per stream must be at least 1, got {self.threads_per_stream}")


def available_cores() -> list[int]:
    """The CPUs this process may run on (its affinity mask), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def auto_streams(threads_per_stream: int, mode: str = "throughput") -> int:
    """benchmark_app's rule: throughput fills the cores with streams of `threads_per_stream`; latency uses one."""
    if mode == "latency":
        return 1
    return max(1, len(available_cores()) // max(1, threads_per_stream))


def core_sets(config: StreamConfig) -> list[tuple[int, ...]] | None:
    """Disjoint cores for each stream, or None when they do not fit or pinning is off or left to libgomp."""
    if not config.pin or not hasattr(os, "sched_setaffinity"):
        return None
    bound = [v for v in _LIBGOMP_BINDING_VARS if os.environ.get(v)]
    if bound:
        logger.info("not pinning streams: %s set, libgomp binds its threads itself", ", ".join(bound))
        return None
    cores = available_cores()
    t = config.threads_per_stream
    if config.streams * t > len(cores):
        logger.info("not pinning: %d streams x %d threads > %d available cores", config.streams, t, len(cores))
        return None
    return [tuple(cores[i * t : (i + 1) * t]) for i in range(config.streams)]


class StreamPool:
    """`streams` worker threads; each sets its OpenMP thread count and pins itself once, then runs jobs.

    Jobs are plain callables (the Predictor submits its own thread-safe `run_dict`), so what a stream owns
    besides its team lives in the Predictor's program pool: one program per concurrent run, weights shared.
    """

    def __init__(self, config: StreamConfig):
        self.config = config
        self.cores = core_sets(config)
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=config.streams, thread_name_prefix="int8kit-stream", initializer=self._init_worker
        )

    def _init_worker(self) -> None:
        with self._lock:
            index = next(self._next)
        if self.cores is not None:
            try:
                os.sched_setaffinity(0, self.cores[index])
            except OSError as exc:  # a container may forbid it; streams still run, unpinned
                logger.info("stream %d: cannot pin to cores %s: %s", index, self.cores[index], exc)
        cpu.set_num_threads(self.config.threads_per_stream)
        logger.debug("stream %d: %d thread(s), cores %s", index, self.config.threads_per_stream, self.cores)

    def submit(self, fn: Callable[..., T], *args, **kwargs) -> Future[T]:
        return self._executor.submit(fn, *args, **kwargs)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
