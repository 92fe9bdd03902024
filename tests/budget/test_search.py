"""PrefixBisection finds the smallest passing prefix of a monotone test in 2 + ceil(log2 n) probes."""

import math

import pytest

from int8kit.budget.search import PrefixBisection


def _run(n: int, threshold: int, zero_failed: bool = False) -> tuple[int | None, list[int], list[int]]:
    """Drive a search whose test passes for k >= threshold; return its result, the probes, and the bounds seen."""
    search = PrefixBisection(n, zero_failed=zero_failed)
    probes, bounds = [], [search.probes_left()]
    while (k := search.next()) is not None:
        probes.append(k)
        search.record(k, k >= threshold)
        bounds.append(search.probes_left())
    return search.result, probes, bounds


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 31, 32, 33, 100])
def test_every_threshold_is_found_within_the_bound(n):
    limit = 2 + (math.ceil(math.log2(n)) if n > 1 else 0) if n else 1
    for threshold in range(n + 2):  # n + 1: nothing passes
        result, probes, bounds = _run(n, threshold)
        assert result == (threshold if threshold <= n else None)
        assert len(probes) == len(set(probes)) <= limit  # no k measured twice
        # The bound never undercounts: after each probe, at most that many follow.
        assert all(bounds[i] >= len(probes) - i for i in range(len(bounds)))
        assert bounds[-1] == 0


def test_zero_known_to_fail_is_not_probed_again():
    result, probes, _ = _run(16, 5, zero_failed=True)
    assert result == 5 and 0 not in probes and probes[0] == 16


def test_outcomes_must_come_in_order():
    search = PrefixBisection(4)
    with pytest.raises(ValueError, match="expected the outcome of k=0"):
        search.record(2, True)
