"""`int8kit test`'s engine: stream batches from a data file, time the model, count top-1/top-5.

Follows the seed's sample_tester: `warmup_iter` untimed batches first, then `iterations` timed batches
(0 = the whole file); batch latency = total time / iterations. Unlike the seed, sample latency and
images/s come from the images actually run (a partial last batch, or a batch larger than the file, counts
its real images, not the batch size). Only the model call is timed; the batch is read from the memmap
first. Every image counts once for accuracy (in percent), the partial last batch too (padded if the
model's batch is fixed). Images holding NaN or inf are counted and warned about.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from int8kit.data.open_data import Dataset, open_dataset
from int8kit.errors import ConfigError, DataError, InputError
from int8kit.evaluate.backends import Backend, InputInfo, make_backend
from int8kit.evaluate.environment import environment
from int8kit.evaluate.metrics import Accuracy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestConfig:
    """The seed tester's options, plus the backend to time."""

    __test__ = False  # not a pytest test class

    model: Path
    data: Path
    batch_size: int = 50
    iterations: int = 0  # 0: every batch of the file
    num_threads: int = 1
    warmup_iter: int = 2
    with_accuracy_layer: bool = False
    optimize_fp32_model: bool = False
    backend: Literal["int8kit", "onnxruntime"] = "int8kit"
    precision: Literal["fp32", "bf16"] = "fp32"  # int8kit: run float convolutions / inner products in bf16

    def __post_init__(self) -> None:
        from int8kit.runtime.precision import check_precision

        check_precision(self.precision)
        if self.precision != "fp32" and self.backend != "int8kit":
            raise ConfigError(f"--precision {self.precision} runs on the int8kit backend only, not {self.backend}")
        for name, low in (("batch_size", 1), ("iterations", 0), ("num_threads", 1), ("warmup_iter", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")


@dataclass(frozen=True)
class TestResult:
    """What the seed prints, plus latency percentiles and the environment, JSON-ready via `to_dict`.

    top1/top5 are percent (None without labels); `images` counts every image scored, `timed_images` those
    the timings (sample latency, fps) are divided by.
    """

    __test__ = False

    config: TestConfig
    images: int
    iterations: int
    top1: float | None
    top5: float | None
    total_time_s: float
    batch_latency_ms: float
    sample_latency_ms: float
    fps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    environment: dict[str, Any]
    timed_images: int = 0
    nonfinite_images: int = 0
    precision: str = "fp32"  # what ran: "fp32" also when bf16 was asked for on a CPU without bf16 kernels
    model_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in out["config"].items()}
        out["units"] = {"top1": "percent", "top5": "percent", "*_ms": "milliseconds", "fps": "images/s"}
        return out


def _check_shapes(config: TestConfig, data: Dataset, image_input: InputInfo) -> int | None:
    """Compare the data's image shape with the model's declared input; return a fixed batch size or None."""
    declared = image_input.shape
    if len(declared) != 1 + len(data.image_shape):
        raise InputError(
            f"{config.model}: input {image_input.name!r} has rank {len(declared)}, but {config.data} "
            f"holds images of shape {data.image_shape}"
        )
    for have, want in zip(data.image_shape, declared[1:], strict=True):
        if isinstance(want, int) and want > 0 and want != have:
            raise InputError(
                f"{config.model}: input {image_input.name!r} wants images of {tuple(declared[1:])}, "
                f"but {config.data} holds {data.image_shape}"
            )
    batch = declared[0]
    if isinstance(batch, int) and batch > 0:
        if batch != config.batch_size:
            raise ConfigError(f"{config.model} has a fixed batch size of {batch}; use --batch-size {batch}")
        return batch
    return None


def _batch_at(data: Dataset, start: int, count: int, fixed: int | None) -> np.ndarray:
    """Read a batch into memory (outside the timer), padding a short last batch for fixed-batch models."""
    images = data.batch(start, count)
    # Copy views of the file into memory here, so page faults are not timed as model time.
    images = np.array(images, dtype=np.float32, order="C", copy=not images.flags.owndata)
    if fixed is not None and count < fixed:
        images = np.concatenate([images, np.repeat(images[-1:], fixed - count, axis=0)])
    return images


def sha256(path: Path) -> str:
    """The model file's SHA-256, so a result names exactly which model it measured."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _nonfinite_rows(images: np.ndarray, count: int) -> np.ndarray:
    """Indices (within the batch) of the real images that hold a NaN or inf."""
    real = images[:count].reshape(count, -1)
    return np.flatnonzero(~np.isfinite(real).all(axis=1))


def run_test(
    config: TestConfig,
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TestResult:
    """Run the seed tester's loop on `config`; `backend` overrides the one the config names (for tests).

    `progress(done, total)` is called after every timed batch.
    """
    data = open_dataset(config.data)
    labels = data.labels
    if config.with_accuracy_layer and labels is None:
        raise ConfigError(f"{config.data} has no labels, so --with-accuracy-layer has nothing to feed")
    backend = backend or make_backend(
        config.backend, config.model, config.num_threads, config.optimize_fp32_model, config.precision
    )
    wanted = 2 if config.with_accuracy_layer else 1
    if len(backend.inputs) != wanted:
        raise InputError(
            f"{config.model}: has {len(backend.inputs)} inputs "
            f"({', '.join(i.name for i in backend.inputs)}); expected {wanted}"
            + (" (image, label) with --with-accuracy-layer" if wanted == 2 else " (the image)")
        )
    fixed = _check_shapes(config, data, backend.inputs[0])
    n, size = len(data), config.batch_size
    available = math.ceil(n / size)
    iterations = config.iterations or available
    if iterations > available:
        logger.warning(
            "%s holds %d batches of %d; running %d, not %d",
            config.data,
            available,
            size,
            available,
            iterations,
        )
        iterations = available
    if fixed is not None and config.with_accuracy_layer and n % size and iterations == available:
        raise ConfigError(
            f"{config.model}: fixed batch {size} does not divide {n} images; with an accuracy layer "
            "the last batch cannot be padded"
        )

    def feeds(start: int, count: int) -> dict[str, np.ndarray]:
        out = {backend.inputs[0].name: _batch_at(data, start, count, fixed)}
        if config.with_accuracy_layer:
            label_input = backend.inputs[1]
            batch_labels = np.asarray(labels[start : start + count], dtype=np.int64)
            out[label_input.name] = batch_labels.reshape((count,) + (1,) * (len(label_input.shape) - 1))
        return out

    for w in range(config.warmup_iter):
        start = (w % available) * size
        backend.run(feeds(start, min(size, n - start)))

    accuracy = Accuracy()
    times = []
    timed_images = 0
    nonfinite: list[int] = []
    for i in range(iterations):
        start = i * size
        count = min(size, n - start)
        batch = feeds(start, count)
        nonfinite += (start + _nonfinite_rows(batch[backend.inputs[0].name], count)).tolist()
        t0 = time.perf_counter()
        outputs = backend.run(batch)
        times.append(time.perf_counter() - t0)
        if config.with_accuracy_layer:
            if len(outputs) < 3:
                raise InputError(f"{config.model}: with an accuracy layer the model must output (scores, top1, top5)")
            top1, top5 = (float(np.asarray(o).reshape(-1)[0]) for o in outputs[1:3])
            accuracy.add_counts(count, {1: round(top1 * count), 5: round(top5 * count)})
        elif labels is not None:
            scores = np.asarray(outputs[0])[:count]
            try:
                accuracy.update(scores, labels[start : start + count])
            except ValueError as exc:
                raise DataError(f"{config.data}: images {start}..{start + count - 1}: {exc}") from None
        timed_images += count
        logger.debug("batch %d: %.3f ms", i, times[-1] * 1000)
        if progress is not None:
            progress(i + 1, iterations)

    if nonfinite:
        logger.warning(
            "%s: %d image(s) hold NaN or inf values (first: image %d); their scores mean nothing",
            config.data,
            len(nonfinite),
            nonfinite[0],
        )
    total = float(sum(times))
    batch_ms = total * 1000 / iterations
    sample_ms = total * 1000 / timed_images
    p50, p90, p99 = (float(v) * 1000 for v in np.percentile(times, [50, 90, 99]))
    has_acc = labels is not None
    return TestResult(
        config=config,
        images=accuracy.count if has_acc else timed_images,
        iterations=iterations,
        top1=100 * accuracy.rate(1) if has_acc else None,
        top5=100 * accuracy.rate(5) if has_acc else None,
        total_time_s=total,
        batch_latency_ms=batch_ms,
        sample_latency_ms=sample_ms,
        fps=1000 / sample_ms if sample_ms > 0 else float("inf"),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        environment=environment(),
        timed_images=timed_images,
        nonfinite_images=len(nonfinite),
        precision=getattr(backend, "precision", "fp32"),
        model_sha256=sha256(config.model) if Path(config.model).is_file() else "",
    )
