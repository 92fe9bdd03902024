"""Top-k accuracy counting, and the cosine of two models' outputs per sample.

A sample is correct at k when fewer than k classes score strictly higher than its label (ties count in
the sample's favour, so the result does not depend on a sort order); a NaN score for the label is never
correct."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows of `scores` (B, classes, ...) have their label among the k best."""
    scores = np.asarray(scores).reshape(len(scores), -1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(scores):
        raise ValueError(f"{len(scores)} score rows but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got {labels.min()}..{labels.max()}")
    own = scores[np.arange(len(labels)), labels]
    rank = (scores > own[:, None]).sum(axis=1)
    return int(np.count_nonzero((rank < k) & ~np.isnan(own)))


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each sample's outputs (rows of two (B, ...) arrays), in float64."""
    a, b = np.asarray(a).reshape(len(a), -1).astype(np.float64), np.asarray(b).reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@dataclass
class Accuracy:
    """Running top-1/top-5 counts over batches."""

    ks: tuple[int, ...] = (1, 5)
    count: int = 0
    correct: dict[int, int] = field(default_factory=dict)

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        for k in self.ks:
            self.correct[k] = self.correct.get(k, 0) + topk_correct(scores, labels, k)
        self.count += len(labels)

    def add_counts(self, count: int, correct: dict[int, int]) -> None:
        """For models with an accuracy layer: they report the counts themselves."""
        for k in self.ks:
            self.correct[k] = self.correct.get(k, 0) + correct[k]
        self.count += count

    def rate(self, k: int) -> float:
        return self.correct.get(k, 0) / self.count if self.count else float("nan")
