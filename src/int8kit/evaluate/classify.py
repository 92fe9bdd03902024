"""`int8kit classify`'s engine: images -> `preprocess`'s exact preprocessing -> model -> top-k rows, streamed.

Rows are written as each batch finishes, into a temporary file renamed into place at the end (CSV, or
Parquet row groups with pyarrow), so memory stays flat for a million images and an interrupted run
leaves no half-written output. A bad image is reported (path and reason) and skipped, unless
`fail_on_bad_image`. The scores are the model's own output values (logits or probabilities).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from int8kit.data.atomic_file import AtomicFile
from int8kit.data.images import ImageSpec, normalize
from int8kit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
ProgressCallback = Callable[[int, int], None]
BadImageCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class ClassifyConfig:
    """What to classify, how to preprocess it (as `int8kit preprocess`), and where the rows go."""

    model: Path
    input: Path
    output: Path
    spec: ImageSpec = field(default_factory=ImageSpec)
    top_k: int = 5
    batch_size: int = 50
    num_threads: int = 1
    streams: int = 1
    workers: int | None = None  # decoding processes; None: all cores
    fail_on_bad_image: bool = False

    def __post_init__(self) -> None:
        for name in ("top_k", "batch_size", "num_threads", "streams"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        output_format(self.output)


@dataclass(frozen=True)
class ClassifyResult:
    output: Path
    rows: int
    bad: tuple[tuple[str, str], ...]  # (path, reason)


def output_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: the output must end in .csv or .parquet")
    return suffix[1:]


def list_images(source: Path) -> list[str]:
    """A folder (its image files, recursively, sorted) or a list file (one path per line, relative to it).

    List lines may carry a trailing integer label, as in `val_list.txt`; it is ignored.
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(str(p) for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not paths:
            raise DataError(f"{source}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        return paths
    if not source.is_file():
        raise DataError(f"{source}: no such folder or list file")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: cannot read the list: {exc}") from None
    paths = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit() and not (source.parent / line).exists():
            line = parts[0]
        paths.append(str(source.parent / line))
    if not paths:
        raise DataError(f"{source}: the list names no images")
    return paths


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the k highest scores per row, best first; ties go to the lower class index."""
    scores = np.asarray(scores, dtype=np.float32).reshape(len(scores), -1)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def columns(k: int) -> list[str]:
    return ["path"] + [c for i in range(1, k + 1) for c in (f"top{i}", f"top{i}_score")]


class RowWriter:
    """Appends (path, top-k) rows to a CSV or Parquet file that appears only when `close()` succeeds."""

    def __init__(self, path: Path, k: int):
        self.format = output_format(path)
        self.k = k
        self._pq = None
        if self.format == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise ConfigError(
                    f"{path}: writing Parquet needs pyarrow (pip install 'int8kit[parquet]'), or write .csv"
                ) from None
            fields = [("path", pa.string())]
            for i in range(1, k + 1):
                fields += [(f"top{i}", pa.int64()), (f"top{i}_score", pa.float32())]
            self._schema = pa.schema(fields)
            self._pa = pa
        self._file = AtomicFile(path)
        if self.format == "parquet":
            self._pq = pq.ParquetWriter(self._file.file, self._schema)
        else:
            self._write_csv([columns(k)])
        self.rows = 0

    def _write_csv(self, rows: list[list[object]]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        self._file.file.write(buf.getvalue().encode("utf-8"))

    def append(self, paths: Sequence[str], scores: np.ndarray) -> None:
        """Rows for `paths` from the model's scores (N, classes)."""
        self.append_topk(paths, *top_k(scores, self.k))

    def append_topk(self, paths: Sequence[str], index: np.ndarray, value: np.ndarray) -> None:
        """Rows from top-k already computed (N, <=k) class indices and scores, best first."""
        if not len(paths):
            return
        k = index.shape[1]
        if self.format == "csv":
            rows = []
            for p, idx, val in zip(paths, index.tolist(), value.tolist(), strict=True):
                cells: list[object] = [p]
                for i in range(self.k):
                    cells += [idx[i], repr(float(val[i]))] if i < k else ["", ""]
                rows.append(cells)
            self._write_csv(rows)
        else:
            data = {"path": list(paths)}
            for i in range(self.k):
                data[f"top{i + 1}"] = index[:, i].astype(np.int64) if i < k else [None] * len(paths)
                data[f"top{i + 1}_score"] = value[:, i].astype(np.float32) if i < k else [None] * len(paths)
            self._pq.write_table(self._pa.table(data, schema=self._schema))
        self.rows += len(paths)

    def close(self) -> Path:
        if self._pq is not None:
            self._pq.close()
        return self._file.commit()

    def abort(self) -> None:
        if self._pq is not None:
            with contextlib.suppress(Exception):  # the file is deleted next; a failed footer does not matter
                self._pq.close()
        self._file.abort()


def decoded_batches(
    paths: list[str], spec: ImageSpec, batch_size: int, workers: int | None
) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
    """(good paths, their float32 images, (bad path, reason) list) per batch, decoded as `preprocess` does."""
    from int8kit.data.preprocess import _decoded  # the same decoder pool `int8kit preprocess` runs

    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    workers = min(workers or os.cpu_count() or 1, len(chunks))
    done = 0
    for results in _decoded(chunks, spec, workers):
        chunk = paths[done : done + len(results)]
        done += len(results)
        good = [(p, pix) for p, (pix, _) in zip(chunk, results, strict=True) if pix is not None]
        bad = [(p, reason or "unreadable") for p, (pix, reason) in zip(chunk, results, strict=True) if pix is None]
        images = (
            normalize(np.stack([pix for _, pix in good]), spec.mean, spec.std)
            if good
            else np.empty((0, *spec.shape), np.float32)
        )
        yield [p for p, _ in good], images, bad


def classify(
    config: ClassifyConfig, progress: ProgressCallback | None = None, on_bad: BadImageCallback | None = None
) -> ClassifyResult:
    """Classify every image of `config.input` in this process (streams of Python threads)."""
    from int8kit.runtime.predictor import Predictor

    paths = list_images(config.input)
    predictor = Predictor(config.model, num_threads=config.num_threads, streams=config.streams)
    writer = RowWriter(config.output, config.top_k)
    bad: list[tuple[str, str]] = []
    seen = 0

    def batches() -> Iterator[tuple[list[str], np.ndarray]]:
        nonlocal seen
        for good, images, failed in decoded_batches(paths, config.spec, config.batch_size, config.workers):
            for path, reason in failed:
                if config.fail_on_bad_image:
                    raise DataError(f"{path}: {reason} (leave out --fail-on-bad-image to skip bad images)")
                bad.append((path, reason))
                if on_bad is not None:
                    on_bad(path, reason)
            seen += len(good) + len(failed)
            if good:
                yield good, images

    try:
        pending = batches()
        jobs = ((names, predictor.submit(images)) for names, images in pending)
        window: list[tuple[list[str], object]] = []
        for item in jobs:
            window.append(item)
            if len(window) > config.streams:
                _write_first(window, writer)
                if progress is not None:
                    progress(seen, len(paths))
        while window:
            _write_first(window, writer)
        if progress is not None:
            progress(seen, len(paths))
        if writer.rows == 0:
            raise DataError(f"{config.input}: none of the {len(paths)} images could be read")
    except BaseException:
        writer.abort()
        raise
    finally:
        predictor.close()
    output = writer.close()
    if bad:
        logger.warning("skipped %d bad image(s) of %d", len(bad), len(paths))
    return ClassifyResult(output=output, rows=writer.rows, bad=tuple(bad))


def _write_first(window: list, writer: RowWriter) -> None:
    names, future = window.pop(0)
    writer.append(names, future.result())
