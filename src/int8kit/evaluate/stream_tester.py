"""`int8kit test --streams N`: the seed tester's loop with N batches in flight on the Predictor's streams.

Same data, batches, warm-up and accuracy counting as `run_test`; the difference is timing. Batches overlap,
so images/s is the timed images over the wall time of the whole timed phase (reading batches from the file
overlaps with running others), batch latency is that wall time / iterations (the seed's definition), and
p50/p90/p99 are over each batch's own run time on its stream. int8kit backend only, no accuracy layer.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from int8kit.data.open_data import open_dataset
from int8kit.errors import ConfigError, DataError
from int8kit.evaluate.backends import InputInfo
from int8kit.evaluate.environment import environment
from int8kit.evaluate.metrics import Accuracy
from int8kit.evaluate.tester import TestConfig, TestResult, _batch_at, _check_shapes, _nonfinite_rows, sha256

logger = logging.getLogger(__name__)


def _timed(predictor, feeds: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = predictor.run_dict(feeds)[predictor.output_names[0]]
    return time.perf_counter() - t0, out


def run_stream_test(config: TestConfig, streams: int, progress: Callable[[int, int], None] | None = None) -> TestResult:
    """`run_test(config)` with `streams` concurrent streams of `config.num_threads` threads each."""
    from int8kit.runtime.predictor import Predictor

    if streams < 1:
        raise ConfigError(f"streams must be at least 1, got {streams}")
    if config.backend != "int8kit":
        raise ConfigError(f"--streams runs the int8kit backend only, not {config.backend}")
    if config.with_accuracy_layer:
        raise ConfigError("--streams does not support --with-accuracy-layer; leave out one of them")
    data = open_dataset(config.data)
    labels = data.labels
    with Predictor(
        config.model, num_threads=config.num_threads, streams=streams, precision=config.precision
    ) as predictor:
        name = predictor.input_names[0]
        fixed = _check_shapes(config, data, InputInfo(name, predictor.input_shapes[name] or ()))
        n, size = len(data), config.batch_size
        available = math.ceil(n / size)
        iterations = min(config.iterations or available, available)
        pool = predictor.stream_pool()
        accuracy, times, nonfinite, timed_images = Accuracy(), [], [], 0

        def submit(i: int, check: bool = False) -> Future:
            start = (i % available) * size
            count = min(size, n - start)
            images = _batch_at(data, start, count, fixed)
            if check:
                nonfinite.extend((start + _nonfinite_rows(images, count)).tolist())
            return pool.submit(_timed, predictor, {name: images})

        def finish(i: int, future: Future) -> None:
            nonlocal timed_images
            seconds, scores = future.result()
            start, count = i * size, min(size, n - i * size)
            times.append(seconds)
            if labels is not None:
                try:
                    accuracy.update(np.asarray(scores)[:count], labels[start : start + count])
                except ValueError as exc:
                    raise DataError(f"{config.data}: images {start}..{start + count - 1}: {exc}") from None
            timed_images += count
            if progress is not None:
                progress(len(times), iterations)

        for w in range(config.warmup_iter):  # each round puts a batch on every stream (each compiles its own)
            for future in [submit(w * streams + s) for s in range(streams)]:
                future.result()
        pending: deque[tuple[int, Future]] = deque()
        t0 = time.perf_counter()
        for i in range(iterations):
            pending.append((i, submit(i, check=True)))
            if len(pending) > streams:  # one batch queued behind the running ones keeps every stream busy
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
        wall = time.perf_counter() - t0

    if nonfinite:
        logger.warning(
            "%s: %d image(s) hold NaN or inf values (first: image %d)", config.data, len(nonfinite), nonfinite[0]
        )
    p50, p90, p99 = (float(v) * 1000 for v in np.percentile(times, [50, 90, 99]))
    has_acc = labels is not None
    return TestResult(
        config=config,
        images=accuracy.count if has_acc else timed_images,
        iterations=iterations,
        top1=100 * accuracy.rate(1) if has_acc else None,
        top5=100 * accuracy.rate(5) if has_acc else None,
        total_time_s=wall,
        batch_latency_ms=wall * 1000 / iterations,
        sample_latency_ms=wall * 1000 / timed_images,
        fps=timed_images / wall if wall > 0 else float("inf"),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        environment=environment(),
        timed_images=timed_images,
        nonfinite_images=len(nonfinite),
        precision=predictor.precision,
        model_sha256=sha256(config.model),
    )
