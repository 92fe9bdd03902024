"""Ray Data scale-out: decode tasks feed an actor pool of int8kit Predictors (`pip install 'int8kit[ray]'`).

    import ray, int8kit.ray
    ds = ray.data.read_images("s3://bucket/imgs", size=(224, 224))            # or any dataset of images
    ds = ds.map_batches(int8kit.ray.Int8kitPredictor, fn_constructor_kwargs={"model": "m_int8.onnx"},
                        concurrency=4, num_cpus=2, batch_size=50, batch_format="numpy")

`Int8kitPredictor` loads the model once per actor and runs `num_threads` OpenMP threads. Ray starts its worker
processes fresh (no OpenMP team is inherited across a fork; a forked one would be handled by
`int8kit.runtime.fork_guard` anyway). `classify_with_ray` is what `int8kit classify --ray-address` runs:
read the paths -> decode and preprocess tasks (exactly as `int8kit preprocess`) -> actors -> rows written
by the driver, in input order, as they arrive. Ray is imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from int8kit.data.images import ImageSpec, load_uint8, normalize
from int8kit.errors import ConfigError, DataError
from int8kit.evaluate.classify import ClassifyConfig, ClassifyResult, RowWriter, list_images, top_k

logger = logging.getLogger(__name__)

IMAGE, PATH, ERROR = "image", "path", "error"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray without its data extra has no ray.data)
    except ImportError:
        raise ConfigError("Ray (with Ray Data) is not installed: pip install 'int8kit[ray]'") from None
    return ray


class Int8kitPredictor:
    """A Ray Data callable class: `batch[input_column]` (N, C, H, W) float32 -> top-k columns.

    Adds `top1`, `top1_score`, ... `top{k}_score` (and `scores` with `keep_scores`); drops the image column
    unless `keep_input`. Rows whose `error` column is non-empty (undecodable images) get class -1, score NaN.
    `model` is a path readable on every node, or the model file's bytes.
    """

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        num_threads: int = 1,
        top_k: int = 5,
        input_column: str = IMAGE,
        keep_input: bool = False,
        keep_scores: bool = False,
    ):
        import onnx

        from int8kit.runtime.predictor import Predictor

        source = onnx.load_from_string(model) if isinstance(model, bytes) else model
        self.predictor = Predictor(source, num_threads=num_threads)
        self.top_k = top_k
        self.input_column = input_column
        self.keep_input = keep_input
        self.keep_scores = keep_scores

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = np.asarray(batch[self.input_column], dtype=np.float32)
        ok = np.ones(len(images), bool)
        if ERROR in batch:
            ok = np.asarray([not e for e in batch[ERROR]], bool)
        out = {k: v for k, v in batch.items() if self.keep_input or k != self.input_column}
        scores = self.predictor.run(images[ok]) if ok.any() else None
        n = len(images)
        k = self.top_k if scores is None else min(self.top_k, int(np.prod(scores.shape[1:])))
        index = np.full((n, k), -1, np.int64)
        value = np.full((n, k), np.nan, np.float32)
        if scores is not None:
            index[ok], value[ok] = top_k(scores, k)
        for i in range(k):
            out[f"top{i + 1}"] = index[:, i]
            out[f"top{i + 1}_score"] = value[:, i]
        if self.keep_scores and scores is not None:
            full = np.full((n, *scores.shape[1:]), np.nan, np.float32)
            full[ok] = scores
            out["scores"] = full
        return out


def decode_batch(batch: dict[str, np.ndarray], spec: ImageSpec) -> dict[str, np.ndarray]:
    """Ray Data task: `path` column -> `image` (as `int8kit preprocess` makes it) and `error` ('' if fine)."""
    paths = [str(p) for p in batch[PATH]]
    images = np.zeros((len(paths), *spec.shape), np.float32)
    errors = []
    for i, path in enumerate(paths):
        try:
            images[i] = normalize(load_uint8(path, spec), spec.mean, spec.std)
            errors.append("")
        except FileNotFoundError:
            errors.append("file not found")
        except Exception as exc:  # any decoder failure, reported per file as `int8kit preprocess` does
            errors.append(f"cannot decode: {type(exc).__name__}: {exc}")
    return {PATH: np.asarray(paths, dtype=object), IMAGE: images, ERROR: np.asarray(errors, dtype=object)}


def connect(address: str, num_cpus: int | None = None) -> bool:
    """ray.init for 'local' (a new single-node instance), 'auto' or an address; True if this call started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), **kwargs)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot connect to Ray at {address!r}: {exc}") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when a host:port address has nobody listening (ray.init retries long)."""
    host, sep, port = address.rpartition(":")
    if address in ("auto",) or "://" in address or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster at {address}: {exc} (start one with `ray start --head`, or use --ray-address local)"
        ) from None


def default_actors(cluster_cpus: int, num_threads: int) -> int:
    """Actors of `num_threads` CPUs each, leaving one CPU for the decode tasks (at least one actor)."""
    return max(1, (int(cluster_cpus) - 1) // num_threads)


def classify_with_ray(
    config: ClassifyConfig,
    address: str,
    actors: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    num_cpus: int | None = None,
) -> ClassifyResult:
    """`int8kit classify` as a Ray Data pipeline; rows equal the in-process `classify` (same order)."""
    ray = _ray()
    paths = list_images(config.input)
    model_bytes = Path(config.model).read_bytes() if Path(config.model).is_file() else None
    if model_bytes is None:
        raise DataError(f"{config.model}: model file not found")
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    writer = RowWriter(config.output, config.top_k)
    bad: list[tuple[str, str]] = []
    started = False
    try:
        started = connect(address, num_cpus)
        # Rows in input order, no Ray bars under ours; the caller's context is restored at the end.
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        cpus = ray.cluster_resources().get("CPU", 1)
        n_actors = actors or default_actors(cpus, config.num_threads)
        logger.info(
            "ray: %d images, %d actor(s) x %d thread(s), %g cluster CPUs",
            len(paths),
            n_actors,
            config.num_threads,
            cpus,
        )
        ds = ray.data.from_items([{PATH: p} for p in paths])
        # Half a CPU per decode task: more decoders than spare cores, and (resources differing from the
        # actors') Ray Data does not fuse decoding into the actors, so it runs as its own parallel stage.
        ds = ds.map_batches(
            decode_batch,
            fn_kwargs={"spec": config.spec},
            batch_size=config.batch_size,
            batch_format="numpy",
            num_cpus=0.5,
        )
        ds = ds.map_batches(
            Int8kitPredictor,
            fn_constructor_kwargs={"model": model_bytes, "num_threads": config.num_threads, "top_k": config.top_k},
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=config.num_threads,
            batch_size=config.batch_size,
            batch_format="numpy",
        )
        done = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            errors = [str(e) for e in batch[ERROR]]
            names = [str(p) for p in batch[PATH]]
            for name, err in zip(names, errors, strict=True):
                if err:
                    if config.fail_on_bad_image:
                        raise DataError(f"{name}: {err} (leave out --fail-on-bad-image to skip bad images)")
                    bad.append((name, err))
            good = np.asarray([not e for e in errors], bool)
            k = sum(1 for key in batch if key.startswith("top") and not key.endswith("_score"))
            index = np.stack([batch[f"top{i + 1}"] for i in range(k)], axis=1)[good]
            value = np.stack([batch[f"top{i + 1}_score"] for i in range(k)], axis=1)[good]
            writer.append_topk([n for n, g in zip(names, good, strict=True) if g], index, value)
            done += len(names)
            if progress is not None:
                progress(done, len(paths))
        if writer.rows == 0:
            raise DataError(f"{config.input}: none of the {len(paths)} images could be read")
    except BaseException:
        writer.abort()
        raise
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if started:
            ray.shutdown()
    output = writer.close()
    return ClassifyResult(output=output, rows=writer.rows, bad=tuple(bad))
