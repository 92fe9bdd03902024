"""The labelled images every budget round is scored on, read once, and top-1 of a Predictor on them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from int8kit.errors import DataError

MAX_CACHED_BYTES = 512 << 20  # keep the evaluation images in memory up to this size (else re-read per round)


class EvalSet:
    """The first `limit` labelled images of `data`, in batches of `batch_size`."""

    def __init__(self, data, limit: int, batch_size: int) -> None:
        labels = getattr(data, "labels", None)
        where = getattr(data, "path", "the data")
        if labels is None:
            raise DataError(f"{where}: the accuracy budget needs labelled data (a seed or compact data file)")
        self.n = min(limit, len(data))
        if self.n == 0:
            raise DataError(f"{where}: no images to measure accuracy on")
        self.data = data
        self.labels = np.asarray(labels[: self.n])
        self.starts = range(0, self.n, batch_size)
        self.batch_size = batch_size
        image_bytes = 4 * int(np.prod(data.image_shape))
        self._cached = list(self._read()) if self.n * image_bytes <= MAX_CACHED_BYTES else None

    def __len__(self) -> int:
        return self.n

    def _read(self) -> Iterator[np.ndarray]:
        for start in self.starts:
            yield np.ascontiguousarray(self.data.batch(start, min(self.batch_size, self.n - start)))

    def batches(self) -> Iterator[np.ndarray]:
        return iter(self._cached) if self._cached is not None else self._read()

    def first_batch(self) -> np.ndarray:
        return next(self.batches())


@dataclass(frozen=True)
class Score:
    """Top-1 of a run on `seen` of the `total` images (fewer when it stopped once the budget was out of reach)."""

    correct: int
    seen: int
    total: int

    @property
    def complete(self) -> bool:
        return self.seen == self.total

    @property
    def top1(self) -> float:
        """Percent correct on the images seen."""
        return 100.0 * self.correct / max(self.seen, 1)


def score(predictor, images: EvalSet, need: float | None = None) -> Score:
    """Top-1 of `predictor` on `images`; stops early once fewer than `need` correct answers are reachable.

    The budget passes only with at least `need` of the images right, so a candidate that can no longer get
    there is decided and the rest of its images would only cost time.
    """
    from int8kit.evaluate.metrics import topk_correct

    correct = seen = 0
    for start, batch in zip(images.starts, images.batches(), strict=True):
        correct += topk_correct(predictor.run(batch), images.labels[start : start + len(batch)], 1)
        seen += len(batch)
        if need is not None and correct + (len(images) - seen) < need:
            break
    return Score(correct, seen, len(images))


def top1(predictor, images: EvalSet) -> float:
    """Top-1 accuracy (percent) of `predictor` on all of `images`."""
    return score(predictor, images).top1
