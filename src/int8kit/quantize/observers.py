"""Streaming range observers for calibration: each sees batches one at a time and keeps O(1) memory.

All share one interface, `update(array)` and `range() -> (lo, hi)`. MinMax keeps the extremes; the
others keep a fixed-size histogram of |x| (symmetric grids clip both sides alike; a zero-point grid of a
one-sided range has its short side near 0, so magnitudes are what matter there too) over
[0, edge], and `edge` grows by powers of two when a batch exceeds it so old bins merge exactly
(2^k old bins -> 1 new bin) instead of being re-spread approximately. From that histogram they pick a
clip threshold t and report (max(min, -t), min(max, t)).
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import numpy as np

from int8kit.errors import ConfigError
from int8kit.quantize.scheme import one_sided

logger = logging.getLogger(__name__)

DEFAULT_BINS = 2048
# Candidate thresholds evaluated by KL/MSE searches; more only refines below one bin's width.
MAX_CANDIDATES = 512


class Observer(Protocol):
    def update(self, x: np.ndarray) -> None: ...

    def range(self) -> tuple[float, float]: ...


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).ravel()
    if x.size and not np.isfinite(x.max() - x.min()):
        logger.warning("ignoring %d non-finite calibration values", int(np.count_nonzero(~np.isfinite(x))))
        x = x[np.isfinite(x)]
    return x


class MinMaxObserver:
    """The smallest and largest value seen: no clipping at all."""

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf

    def update(self, x: np.ndarray) -> None:
        x = _finite(x)
        if x.size:
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))

    def range(self) -> tuple[float, float]:
        """(nan, nan) when no finite value was seen: there is no range, and 0..0 would look like one."""
        if self.lo > self.hi:
            return math.nan, math.nan
        return self.lo, self.hi


class HistogramObserver:
    """Histogram of |x| with `bins` bins over [0, edge]; subclasses choose the threshold."""

    def __init__(self, bins: int = DEFAULT_BINS, zero_point_ok: bool = False) -> None:
        if bins < 256 or bins & (bins - 1):
            raise ConfigError(f"histogram bins must be a power of two >= 256, got {bins}")
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.int64)
        self.edge = 0.0
        self.minmax = MinMaxObserver()
        self.zero_point_ok = zero_point_ok

    @property
    def width(self) -> float:
        return self.edge / self.bins

    @property
    def unsigned(self) -> bool:
        """All levels of the grid serve [0, t]: only non-negative values were seen, or the range is one-sided
        enough to get a zero point (scheme.one_sided), whose u8 grid has the unsigned step."""
        return self.minmax.lo >= 0 or (self.zero_point_ok and one_sided(self.minmax.lo, self.minmax.hi))

    def update(self, x: np.ndarray) -> None:
        x = _finite(x)
        if not x.size:
            return
        self.minmax.update(x)
        a = np.abs(x)
        amax = float(a.max())
        if amax > self.edge:
            self._grow(amax)
        if self.edge == 0.0:
            self.counts[0] += a.size
            return
        idx = (a * np.float32(self.bins / self.edge)).astype(np.int64)
        np.minimum(idx, self.bins - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.bins)

    def _grow(self, amax: float) -> None:
        if self.edge == 0.0:  # everything so far was 0, which is bin 0 of any range
            self.edge = amax
            return
        factor = 2 ** math.ceil(math.log2(amax / self.edge))
        # float rounding can leave edge * factor a hair below amax; values there go to the last bin.
        if factor >= self.bins:
            merged = np.zeros_like(self.counts)
            merged[0] = self.counts.sum()
        else:
            merged = np.zeros_like(self.counts)
            merged[: self.bins // factor] = self.counts.reshape(-1, factor).sum(axis=1)
        self.counts = merged
        self.edge *= factor

    def threshold(self) -> float:
        raise NotImplementedError

    def range(self) -> tuple[float, float]:
        lo, hi = self.minmax.range()
        if self.counts.sum() == 0 or self.edge == 0.0:
            return lo, hi
        t = self.threshold()
        return max(lo, -t), min(hi, t)

    def _extent(self) -> int:
        """Bins up to and including the last non-empty one."""
        return int(np.flatnonzero(self.counts)[-1]) + 1

    def _squared_errors(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clipping error, rounding error) summed over the data for each threshold t: (|x| - t)^2 for the values
        above t, step^2 / 12 for those inside, the step being t over the grid's levels."""
        qmax = 255 if self.unsigned else 127
        centers = (np.arange(self.bins) + 0.5) * self.width
        counts = self.counts.astype(np.float64)
        clipped = np.maximum(centers[None, :] - thresholds[:, None], 0.0)
        clip_err = (clipped**2) @ counts
        inside = np.where(centers[None, :] <= thresholds[:, None], 1.0, 0.0) @ counts
        return clip_err, inside * (thresholds / qmax) ** 2 / 12.0

    def _candidates(self, first: int) -> np.ndarray:
        """Candidate bin counts i (threshold i * width): at most MAX_CANDIDATES, the last at the extent."""
        last = self._extent()
        if last <= first:
            return np.array([last])
        step = max(1, (last - first) // MAX_CANDIDATES)
        return np.unique(np.append(np.arange(first, last + 1, step), last))


class PercentileObserver(HistogramObserver):
    """Clip at the given percentile of |x| (linear inside the bin it falls in)."""

    def __init__(self, percentile: float = 99.99, bins: int = DEFAULT_BINS, zero_point_ok: bool = False) -> None:
        if not 0 < percentile <= 100:
            raise ConfigError(f"percentile must be in (0, 100], got {percentile}")
        super().__init__(bins, zero_point_ok)
        self.percentile = percentile

    def threshold(self) -> float:
        cum = np.cumsum(self.counts)
        target = self.percentile / 100.0 * cum[-1]
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(k, self.bins - 1)
        before = cum[k - 1] if k else 0
        inside = self.counts[k]
        frac = (target - before) / inside if inside else 1.0
        return (k + min(max(frac, 0.0), 1.0)) * self.width


class KLObserver(HistogramObserver):
    """TensorRT entropy calibration: the threshold whose quantized distribution is closest (KL) to the data.

    The reference distribution P is the histogram cut at i bins with the clipped outliers added to its
    last bin; Q merges the same i bins into `levels` even groups (128 for signed data, 256 for
    unsigned) and spreads each group back evenly over its non-empty bins. Bin 0 (which holds the
    exact zeros of a ReLU output, represented exactly by any scale) counts like bin 1, as NVIDIA's
    pytorch-quantization does; otherwise the zeros alone pull the threshold far down.

    One guard on top: the threshold never clips more squared error than the grid's rounding noise over the
    data (the smallest such candidate is a floor). KL weighs a clipped value by how rare it is, not by how
    far it is cut; on heavy-tailed late-layer activations (a MobileNetV3 squeeze-excite output, max 22.7, cut
    at 6.1) it clipped away the few large values that carry the signal, and the clipping error there was 20x
    the rounding error it saved.
    """

    def threshold(self) -> float:
        levels = 256 if self.unsigned else 128
        counts = self.counts.astype(np.float64)
        counts[0] = counts[1]
        # TensorRT's first cut is `levels` bins, which assumes data from 0 up. Magnitudes that start at
        # bin `first` (a tensor that never comes near 0, e.g. a squeeze-excite gate's input) need
        # `first + levels` bins: any shorter cut folds nearly all of the data into its last bin, a spike
        # Q matches exactly (KL 0), so KL would clip the whole tensor to one value.
        first = int(np.flatnonzero(self.counts)[0])
        best_i, best_kl = self._extent(), math.inf
        if best_i <= first + levels:
            return best_i * self.width
        for i in self._candidates(first + levels):
            kl = _kl_for_cut(counts, int(i), levels)
            if kl < best_kl:
                best_i, best_kl = int(i), kl
        cand = self._candidates(1).astype(np.float64) * self.width
        clip_err, round_err = self._squared_errors(cand)
        floor = float(cand[int(np.flatnonzero(clip_err <= round_err)[0])])  # the last candidate clips nothing
        return max(best_i * self.width, floor)


def _kl_for_cut(counts: np.ndarray, i: int, levels: int) -> float:
    sliced = counts[:i]
    p = sliced.copy()
    p[-1] += counts[i:].sum()
    nonzero = p != 0
    # Bin k belongs to level k * levels // i: groups as even as i allows, like a real uniform grid.
    # (TensorRT's i // levels bins per group with the remainder in the last one makes cuts just
    # past a multiple of `levels` look exact everywhere but one huge last group.)
    starts = (np.arange(levels) * i + levels - 1) // levels
    group_sum = np.add.reduceat(sliced, starts)
    group_nz = np.add.reduceat(nonzero.astype(np.float64), starts)
    group = np.arange(i) * levels // i
    q = np.where(nonzero, (group_sum / np.maximum(group_nz, 1.0))[group], 0.0)
    p, q = _smooth(p), _smooth(q)
    if p is None or q is None:
        return math.inf
    p /= p.sum()
    q /= q.sum()
    return float(np.sum(p * np.log(p / q)))


def _smooth(h: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """Move a little mass onto empty bins so KL stays finite (as TensorRT/MXNet do)."""
    zeros = h == 0
    n_zero = int(zeros.sum())
    n_nonzero = h.size - n_zero
    if n_nonzero == 0:
        return None
    eps1 = eps * n_zero / n_nonzero
    out = h + np.where(zeros, eps, -eps1)
    return out if np.all(out > 0) else None


class MSEObserver(HistogramObserver):
    """The threshold minimising expected squared error: rounding noise step^2/12 inside, (|x|-t)^2 outside."""

    def threshold(self) -> float:
        cand = self._candidates(1).astype(np.float64) * self.width
        clip_err, round_err = self._squared_errors(cand)
        return float(cand[int(np.argmin(clip_err + round_err))])


METHODS = ("minmax", "percentile", "kl", "mse")


def make_observer(
    method: str, percentile: float = 99.99, bins: int = DEFAULT_BINS, zero_point_ok: bool = False
) -> Observer:
    """The observer for a calibration method name (see METHODS); `zero_point_ok`: the plan lets the tensor
    take a zero point, so KL/MSE search for the grid it will get."""
    if method == "minmax":
        return MinMaxObserver()
    if method == "percentile":
        return PercentileObserver(percentile, bins, zero_point_ok)
    if method in ("kl", "entropy"):
        return KLObserver(bins, zero_point_ok)
    if method == "mse":
        return MSEObserver(bins, zero_point_ok)
    raise ConfigError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
