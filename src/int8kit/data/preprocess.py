"""Turn an image folder plus `val_list.txt` into a seed or compact data file, decoding on all cores.

Unlike the seed, a missing or corrupt image is an error that lists every bad file (or, with `skip_bad`,
is left out and counted). Workers come from a `forkserver`/`spawn` pool: a forked child hangs in libgomp
once oneDNN's OpenMP has run in the parent. The output appears only when complete (temp file + rename):
an error, Ctrl-C or SIGTERM removes the partial file and shuts the pool down, and a worker whose parent
died without cleaning up (SIGKILL) notices within a second and exits.

Two geometries: the seed's (`ImageSpec`: short side + centre crop, square) and text lines' (`KeepAspectSpec`:
height H keeping the aspect ratio, padded on the right to width W, as PaddleOCR's classifier and recogniser
feed their models). Non-square images need the compact format: the seed format records no height or width.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from int8kit.data.compact_format import CompactWriter
from int8kit.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageSpec,
    check_normalisation,
    load_uint8,
    normalize,
    to_8_bit,
)
from int8kit.data.label_list import LabelEntry, parse_label_list
from int8kit.data.seed_format import SeedWriter
from int8kit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
MAX_LISTED = 20
# PaddleOCR pads with 0 after (x/255 - 0.5)/0.5, i.e. pixel 127.5, which uint8 pixels cannot hold; 128 is
# 0.004 away from it after that normalisation.
DEFAULT_PAD_VALUE = 128


@dataclass(frozen=True)
class KeepAspectSpec:
    """Text-line input: resize to `height` keeping the aspect ratio, pad on the right to `width`.

    PaddleOCR's recipe (ch_ppocr cls/rec `resize_norm_img`): the resized width is `ceil(height * w / h)`,
    at most `width` (a longer line is squeezed to `width`); bilinear resampling; the rest of the row is
    padding. The padding is the pixel value `pad_value` (0-255), normalised like the image, so the seed
    and compact formats hold the same floats. Mean/std have one value per channel.
    """

    height: int = 48
    width: int = 192
    grayscale: bool = False
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    pad_value: int = DEFAULT_PAD_VALUE

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"resize height and pad width must be positive, got {self.height} and {self.width}")
        if not 0 <= self.pad_value <= 255 or int(self.pad_value) != self.pad_value:
            raise ConfigError(f"pad value must be a whole pixel value 0..255, got {self.pad_value}")
        check_normalisation(self.grayscale, self.mean, self.std)

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def resized_width(self, w: int, h: int) -> int:
        """PaddleOCR's width for a w x h image: ceil(height * w/h), at least 1, at most `width`."""
        return max(1, min(self.width, math.ceil(self.height * (w / float(h)))))


def load_keep_aspect(path: str | Path, spec: KeepAspectSpec) -> np.ndarray:
    """Decode one image into uint8 CHW of `spec.shape`: resized to the height, padded on the right."""
    with Image.open(path) as img:
        img.load()
        img = to_8_bit(img)
        mode = "L" if spec.grayscale else "RGB"
        if img.mode != mode:
            img = img.convert(mode)  # before resampling: palette images resize by nearest neighbour only
        w, h = img.size
        if w == 0 or h == 0:
            raise ValueError("image has no pixels")
        new_w = spec.resized_width(w, h)
        pixels = np.asarray(img.resize((new_w, spec.height), Image.Resampling.BILINEAR), dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    out = np.full(spec.shape, spec.pad_value, dtype=np.uint8)
    out[:, :, :new_w] = pixels.transpose(2, 0, 1)
    return out


Spec = ImageSpec | KeepAspectSpec


def load_pixels(path: str | Path, spec: Spec) -> np.ndarray:
    """uint8 CHW pixels of one image, by the geometry `spec` describes."""
    if isinstance(spec, KeepAspectSpec):
        return load_keep_aspect(path, spec)
    return load_uint8(path, spec)


def load_input(path: str | Path, spec: Spec) -> np.ndarray:
    """One image as float32 CHW model input, exactly as a preprocessed data file holds it."""
    return normalize(load_pixels(path, spec), spec.mean, spec.std)


@dataclass(frozen=True)
class PreprocessConfig:
    """What to read, how to preprocess it and where to write it."""

    data_dir: Path
    label_list: Path
    output_file: Path
    spec: Spec = field(default_factory=ImageSpec)
    format: Literal["seed", "compact"] = "seed"
    skip_bad: bool = False
    workers: int | None = None  # None: all cores
    chunk_size: int = 16

    def __post_init__(self) -> None:
        if self.format not in ("seed", "compact"):
            raise ConfigError(f"unknown data format {self.format!r} (seed or compact)")
        _, h, w = self.spec.shape
        if self.format == "seed" and h != w:
            raise ConfigError(
                f"{h}x{w} images need the compact format: the seed format records no height or width, "
                "so its images must be square"
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk size must be at least 1, got {self.chunk_size}")


@dataclass(frozen=True)
class BadImage:
    path: Path
    line: int
    reason: str


@dataclass(frozen=True)
class PreprocessResult:
    output_file: Path
    written: int
    dropped: tuple[BadImage, ...]


def _decode_chunk(paths: Sequence[str], spec: Spec) -> list[tuple[np.ndarray | None, str | None]]:
    """Worker: decode a few images; a bad one yields its reason instead of raising."""
    out: list[tuple[np.ndarray | None, str | None]] = []
    for path in paths:
        try:
            out.append((load_pixels(path, spec), None))
        except FileNotFoundError:
            out.append((None, "file not found"))
        except Exception as exc:  # any decoder failure (Pillow raises OSError, SyntaxError, ValueError...)
            out.append((None, f"cannot decode: {type(exc).__name__}: {exc}"))
    return out


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit as soon as the process that owns the pool is gone.

    The pool's own shutdown needs a live parent. After a SIGKILL nothing tells the workers, and getppid()
    does not help: forkserver workers are children of the forkserver, which they keep alive themselves.
    A pidfd of the owner becomes readable when it exits (zombie or not); without pidfd, poll its pid.
    """

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent_pid)
        except (AttributeError, OSError):
            while _pid_alive(parent_pid):
                time.sleep(0.5)
        else:
            select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="int8kit-parent-watch", daemon=True).start()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) while preprocessing, so cleanup runs (main thread only).

    Further SIGTERMs are ignored until the cleanup is done, so a second signal cannot cut it short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logger.warning("preprocess interrupted by SIGTERM; removing the partial output")
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _decoded(chunks: list[list[str]], spec: Spec, workers: int) -> Iterator[list[tuple[np.ndarray | None, str | None]]]:
    """Decode chunks in order, in-process for one worker, else with a bounded window of pool tasks."""
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            yield _decode_chunk(chunk, spec)
        return
    context = _pool_context()
    pool = ProcessPoolExecutor(workers, context, initializer=_exit_with_parent, initargs=(os.getpid(),))
    pending: deque[Future] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_decode_chunk, chunk, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _bad_message(config: PreprocessConfig, bad: list[BadImage], total: int, hint: str) -> str:
    lines = [f"{b.path} ({config.label_list}:{b.line}): {b.reason}" for b in bad[:MAX_LISTED]]
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return (
        f"{len(bad)} of {total} images listed in {config.label_list} are missing or unreadable "
        f"({hint}):\n  " + "\n  ".join(lines) + more
    )


def preprocess(config: PreprocessConfig, progress: ProgressCallback | None = None) -> PreprocessResult:
    """Write `config.output_file`; raise DataError listing bad images unless `skip_bad`."""
    entries: list[LabelEntry] = parse_label_list(config.label_list)
    if not Path(config.data_dir).is_dir():
        raise DataError(f"{config.data_dir}: data folder not found")
    spec = config.spec
    paths = [str(Path(config.data_dir) / e.path) for e in entries]
    chunks = [paths[i : i + config.chunk_size] for i in range(0, len(paths), config.chunk_size)]
    workers = min(config.workers or os.cpu_count() or 1, len(chunks))
    logger.info("preprocessing %d images with %d worker(s) into %s", len(paths), workers, config.output_file)

    if config.format == "seed":
        writer: SeedWriter | CompactWriter = SeedWriter(config.output_file, spec.shape)
    else:
        writer = CompactWriter(config.output_file, spec.shape, spec.mean, spec.std)
    bad: list[BadImage] = []
    try:
        with _sigterm_exits(), contextlib.closing(_decoded(chunks, spec, workers)) as decoded:
            written = _append_all(config, writer, decoded, entries, paths, bad, progress)
            if bad and not config.skip_bad:
                raise DataError(_bad_message(config, bad, len(paths), "use --skip-bad to leave them out"))
            if not written:
                raise DataError(_bad_message(config, bad, len(paths), "no image could be read"))
            output = writer.close()
    except BaseException:
        writer.abort()
        raise
    if bad:
        logger.warning("left out %d bad image(s) of %d", len(bad), len(paths))
    return PreprocessResult(output_file=output, written=written, dropped=tuple(bad))


def _append_all(
    config: PreprocessConfig,
    writer: SeedWriter | CompactWriter,
    decoded: Iterator[list[tuple[np.ndarray | None, str | None]]],
    entries: list[LabelEntry],
    paths: list[str],
    bad: list[BadImage],
    progress: ProgressCallback | None,
) -> int:
    """Append decoded images in list order, collecting the bad ones in `bad`; returns how many were written."""
    spec = config.spec
    done = 0
    for results in decoded:
        for pixels, reason in results:
            entry = entries[done]
            if pixels is None:
                bad.append(BadImage(Path(paths[done]), entry.line, reason or "unreadable"))
            elif config.format == "seed":
                writer.append(normalize(pixels, spec.mean, spec.std), entry.label)
            else:
                writer.append(pixels, entry.label)
            done += 1
        if progress is not None:
            progress(done, len(paths))
    return done - len(bad)
