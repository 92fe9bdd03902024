"""`int8kit benchmark`'s engine, shaped like OpenVINO's benchmark_app: streams of requests for a fixed time.

Latency mode runs one request at a time on one stream of all cores (the figure a single user sees).
Throughput mode keeps one request in flight per stream, each stream an OpenMP team of `threads_per_stream`
pinned to its own cores, and re-submits as soon as one finishes, so no barrier spans all cores. Throughput
is images finished / wall time; latency percentiles are over requests (one batch each). Every stream runs one
untimed request first (it compiles that stream's program).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from int8kit.errors import ConfigError, InputError, ModelError
from int8kit.evaluate.environment import environment
from int8kit.runtime.streams import auto_streams, available_cores

logger = logging.getLogger(__name__)

Progress = Callable[[float, float], None]  # (seconds done, seconds planned)
MAX_DATA_BATCHES = 16  # distinct batches read from --infer-data and cycled (kept in memory, out of the timer)


@dataclass(frozen=True)
class BenchmarkConfig:
    """benchmark_app's options. `streams`/`num_threads` None: chosen from the mode and the cores."""

    model: Path
    data: Path | None = None
    batch_size: int = 1
    mode: Literal["latency", "throughput"] = "throughput"
    streams: int | None = None
    num_threads: int | None = None
    time_s: float = 10.0
    niter: int = 0  # stop after this many requests (0: run for time_s)
    pin: bool = True
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"  # float convolutions / inner products in FP32 or bf16

    def __post_init__(self) -> None:
        from int8kit.runtime.precision import check_precision

        check_precision(self.precision)
        if self.mode not in ("latency", "throughput"):
            raise ConfigError(f"mode must be latency or throughput, got {self.mode!r}")
        for name, low in (("batch_size", 1), ("niter", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        for name in ("streams", "num_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.time_s <= 0 and not self.niter:
            raise ConfigError(f"time must be positive (or give niter), got {self.time_s}")

    def layout(self) -> tuple[int, int]:
        """(streams, threads per stream): latency = 1 stream of all cores, throughput = cores / threads."""
        cores = len(available_cores())
        if self.mode == "latency":
            threads = self.num_threads or cores
            return self.streams or 1, threads
        if self.streams is not None:
            return self.streams, self.num_threads or max(1, cores // self.streams)
        threads = self.num_threads or 1
        return auto_streams(threads, self.mode), threads


@dataclass(frozen=True)
class BenchmarkResult:
    config: BenchmarkConfig
    streams: int
    threads_per_stream: int
    requests: int
    images: int
    duration_s: float
    throughput_ips: float
    latency_ms: dict[str, float]
    isa: str
    environment: dict[str, Any]
    precision: str = "fp32"  # what ran ("fp32" also when bf16 was asked for on a CPU without bf16 kernels)
    batch_parts: int = 1  # one-thread parts each batch ran as on a single stream (Predictor split_batch)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in out["config"].items()}
        return out


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "median": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "min": float(ms.min()),
        "max": float(ms.max()),
    }


def _synthetic_batch(predictor, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, declared in predictor.input_shapes.items():
        if not declared:
            raise InputError(f"input {name!r} has no declared shape: give --infer-data")
        dims = [batch, *declared[1:]]
        free = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if free:
            raise InputError(f"input {name!r} has free dimension(s) {free} besides the batch: give --infer-data")
        dtype = predictor.input_dtypes[name]
        if dtype == np.float32:
            feeds[name] = rng.standard_normal(dims).astype(np.float32)
        else:  # pixels for a model with its preprocessing inside
            feeds[name] = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, dims).astype(dtype)
    return feeds


def _data_batches(predictor, path: Path, batch: int) -> list[dict[str, np.ndarray]]:
    from int8kit.data.open_data import open_dataset

    if len(predictor.input_names) != 1:
        raise InputError(f"--infer-data feeds one input; the model has {predictor.input_names}")
    data = open_dataset(path)
    n = len(data)
    if n == 0:
        raise InputError(f"{path}: holds no images")
    out = []
    for i in range(min(MAX_DATA_BATCHES, max(1, n // batch))):
        idx = [(i * batch + j) % n for j in range(batch)]
        start = idx[0]
        images = data.batch(start, batch) if start + batch <= n else np.stack([data.batch(k, 1)[0] for k in idx])
        out.append({predictor.input_names[0]: np.array(images, dtype=np.float32, order="C")})
    return out


def run_benchmark(config: BenchmarkConfig, progress: Progress | None = None) -> BenchmarkResult:
    """Time `config.model`; see the module docstring for what is measured."""
    from int8kit.runtime import dnnl
    from int8kit.runtime.predictor import Predictor

    if not Path(config.model).is_file():
        raise ModelError(f"{config.model}: model file not found")
    streams, threads = config.layout()
    logger.info("benchmark: %s mode, %d stream(s) x %d thread(s)", config.mode, streams, threads)
    predictor = Predictor(
        config.model, num_threads=threads, streams=streams, pin_streams=config.pin, precision=config.precision
    )
    try:
        if config.data is not None:
            batches = _data_batches(predictor, config.data, config.batch_size)
        else:
            batches = [_synthetic_batch(predictor, config.batch_size, config.seed)]
        if streams == 1:
            latencies, wall = _run_serial(predictor, batches, config, progress)
        else:
            latencies, wall = _run_streams(predictor, batches, config, streams, progress)
    finally:
        predictor.close()
    images = len(latencies) * config.batch_size
    return BenchmarkResult(
        config=config,
        streams=streams,
        threads_per_stream=threads,
        requests=len(latencies),
        images=images,
        duration_s=wall,
        throughput_ips=images / wall if wall > 0 else float("inf"),
        latency_ms=latency_stats(latencies),
        isa=dnnl.effective_isa(),
        environment=environment(),
        precision=predictor.precision,
        batch_parts=predictor.batch_parts(config.batch_size) if streams == 1 else 1,
    )


def _done(config: BenchmarkConfig, requests: int, elapsed: float) -> bool:
    if config.niter:
        return requests >= config.niter
    return elapsed >= config.time_s


def _planned(config: BenchmarkConfig) -> float:
    return float(config.niter) if config.niter else config.time_s


def _run_serial(predictor, batches, config: BenchmarkConfig, progress: Progress | None) -> tuple[list[float], float]:
    predictor.run_dict(batches[0])  # compile, untimed
    latencies: list[float] = []
    feeds = itertools.cycle(batches)
    start = time.perf_counter()
    now = start
    while not _done(config, len(latencies), now - start):
        batch = next(feeds)
        t0 = time.perf_counter()
        predictor.run_dict(batch)
        now = time.perf_counter()
        latencies.append(now - t0)
        if progress is not None:
            progress(len(latencies) if config.niter else now - start, _planned(config))
    return latencies, now - start


def _timed_run(predictor, feeds: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    predictor.run_dict(feeds)
    return time.perf_counter() - t0


def _run_streams(
    predictor, batches, config: BenchmarkConfig, streams: int, progress: Progress | None
) -> tuple[list[float], float]:
    pool = predictor.stream_pool()
    # One untimed request per stream, all at once, so every stream compiles its own program now.
    for future in [pool.submit(_timed_run, predictor, batches[i % len(batches)]) for i in range(streams)]:
        future.result()
    latencies: list[float] = []
    feeds = itertools.cycle(batches)
    start = time.perf_counter()
    submitted = 0
    in_flight: set[Future] = set()

    def top_up(now: float) -> None:
        nonlocal submitted
        while len(in_flight) < streams and not _done(config, submitted, now - start):
            in_flight.add(pool.submit(_timed_run, predictor, next(feeds)))
            submitted += 1

    top_up(start)
    while in_flight:
        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        now = time.perf_counter()
        for future in finished:
            in_flight.discard(future)
            latencies.append(future.result())
        top_up(now)
        if progress is not None:
            progress(len(latencies) if config.niter else min(now - start, config.time_s), _planned(config))
    return latencies, time.perf_counter() - start
