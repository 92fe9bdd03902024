"""Observers against direct numpy computations on data whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.errors import ConfigError
from int8kit.quantize.observers import (
    KLObserver,
    MinMaxObserver,
    MSEObserver,
    PercentileObserver,
    make_observer,
)


def _growing_chunks(seed: int = 0, n: int = 8, size: int = 20_000) -> list[np.ndarray]:
    """Gaussian chunks whose spread grows, so histogram observers must re-bin several times."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(size) * (1 + k)).astype(np.float32) for k in range(n)]


def _feed(obs, chunks):
    for c in chunks:
        obs.update(c)
    return obs


def _gauss_with_outliers(seed: int = 0, n: int = 200_000, outliers: int = 20, at: float = 50.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32)
    x[:outliers] = rng.choice([-1, 1], outliers) * rng.uniform(0.8 * at, at, outliers)
    return x


def test_minmax_matches_numpy():
    chunks = _growing_chunks()
    lo, hi = _feed(MinMaxObserver(), chunks).range()
    allx = np.concatenate(chunks)
    assert (lo, hi) == (float(allx.min()), float(allx.max()))


def test_histogram_after_regrowth_matches_one_shot_numpy_histogram():
    chunks = _growing_chunks()
    obs = _feed(PercentileObserver(bins=2048), chunks)
    a = np.abs(np.concatenate(chunks))
    assert obs.edge >= a.max()
    ref, _ = np.histogram(a, bins=2048, range=(0.0, obs.edge))
    # Identical up to values sitting exactly on a bin boundary (float rounding).
    assert np.abs(obs.counts - ref).sum() <= 4
    assert obs.counts.sum() == a.size


@pytest.mark.parametrize("p", [99.0, 99.9, 99.99])
def test_percentile_matches_numpy_within_one_bin(p):
    chunks = _growing_chunks()
    obs = _feed(PercentileObserver(p), chunks)
    ref = np.percentile(np.abs(np.concatenate(chunks)), p)
    lo, hi = obs.range()
    assert abs(hi - ref) <= obs.width
    assert abs(-lo - ref) <= obs.width


def test_percentile_of_non_negative_data_keeps_zero_floor():
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal(200_000), 0).astype(np.float32)
    obs = _feed(PercentileObserver(99.9), [x])
    lo, hi = obs.range()
    assert lo == 0.0
    # inverted_cdf: the sample at rank ceil(p * n), the definition a histogram can resolve to one bin.
    assert abs(hi - np.percentile(x, 99.9, method="inverted_cdf")) <= obs.width


@pytest.mark.parametrize("cls", [KLObserver, MSEObserver])
def test_kl_and_mse_clip_outliers_of_a_gaussian(cls):
    x = _gauss_with_outliers(n=1_000_000, outliers=2, at=30.0)
    obs = _feed(cls(), np.array_split(x, 5))
    _, hi = obs.range()
    assert 2.5 < hi < 0.5 * np.abs(x).max()


@pytest.mark.parametrize("cls", [KLObserver, MSEObserver])
def test_kl_and_mse_keep_the_full_range_of_uniform_data(cls):
    # Clipping uniform data only loses information: the best threshold is (nearly) the maximum.
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 200_000).astype(np.float32)
    _, hi = _feed(cls(), np.array_split(x, 4)).range()
    assert hi >= 0.98 * np.abs(x).max()


def _fake_quant_mse(x: np.ndarray, t: float, qmax: int = 127) -> float:
    s = t / qmax
    q = np.clip(np.rint(x / s), -qmax, qmax) * s
    return float(np.mean((x.astype(np.float64) - q) ** 2))


def test_mse_threshold_is_near_the_brute_force_optimum():
    x = _gauss_with_outliers(outliers=3, at=12.0, n=100_000)
    _, t = _feed(MSEObserver(), np.array_split(x, 3)).range()
    grid = np.linspace(1.0, float(np.abs(x).max()), 200)
    errors = [_fake_quant_mse(x, g) for g in grid]
    assert _fake_quant_mse(x, t) <= 1.05 * min(errors)


def test_kl_on_relu_output_is_not_dragged_down_by_the_zeros():
    # Half the values are exact zeros; they are represented exactly whatever the scale.
    rng = np.random.default_rng(2)
    x = np.maximum(rng.uniform(-1, 1, 200_000), 0).astype(np.float32)
    lo, hi = _feed(KLObserver(), [x]).range()
    assert lo == 0.0
    assert hi >= 0.95 * x.max()


@pytest.mark.parametrize("method", ["minmax", "percentile", "kl", "mse"])
def test_memory_does_not_grow_with_the_data(method):
    def footprint(obj) -> int:
        total = 0
        for v in vars(obj).values():
            if isinstance(v, np.ndarray):
                total += v.nbytes
            elif hasattr(v, "__dict__"):
                total += footprint(v)
        return total

    obs = make_observer(method)
    rng = np.random.default_rng(0)
    obs.update(rng.standard_normal(1000).astype(np.float32))
    before = footprint(obs)
    for _ in range(30):
        obs.update(rng.standard_normal(50_000).astype(np.float32))
    assert footprint(obs) == before <= 2048 * 8


def test_all_zero_data_and_no_data():
    for method in ("minmax", "percentile", "kl", "mse"):
        obs = make_observer(method)
        assert all(np.isnan(obs.range()))  # nothing seen: no range at all
        obs.update(np.full(100, np.nan, np.float32))
        assert all(np.isnan(obs.range()))  # only NaN seen: still none
        obs.update(np.zeros(100, np.float32))
        assert obs.range() == (0.0, 0.0)


def test_zeros_then_data_keeps_the_zeros_in_the_first_bin():
    obs = PercentileObserver(50.0)
    obs.update(np.zeros(1000, np.float32))
    obs.update(np.full(999, 4.0, np.float32))
    assert obs.counts[0] == 1000
    assert obs.range()[1] <= obs.width  # the median is a zero


def test_non_finite_values_are_ignored():
    obs = MinMaxObserver()
    obs.update(np.array([1.0, np.nan, -2.0, np.inf], np.float32))
    assert obs.range() == (-2.0, 1.0)


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="method"):
        make_observer("average")
    with pytest.raises(ConfigError, match="percentile"):
        PercentileObserver(0.0)
    with pytest.raises(ConfigError, match="bins"):
        KLObserver(bins=1000)
