"""Bisection for the shortest prefix of a ranking that passes a test, with a bound on the probes left.

The budget's test (top-1 drop within budget when the first k ranked layers leave INT8) is taken as
monotone in k: more layers out of INT8 never loses accuracy. Then the smallest passing k is found in
2 + ceil(log2 n) probes instead of the k + 1 rounds of adding one layer at a time.
"""

from __future__ import annotations

import math


def _log2_ceil(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


class PrefixBisection:
    """Probe k = 0 (nothing out of INT8), then k = n (everything), then bisect between the last fail and pass.

    `next()` names the k to probe (None when done), `record(k, passed)` takes its outcome; `result` is then
    the smallest passing k, or None when even k = n fails. `zero_failed` skips the k = 0 probe.
    """

    def __init__(self, n: int, zero_failed: bool = False) -> None:
        if n < 0:
            raise ValueError(f"ranking length must be >= 0, got {n}")
        self.n = n
        self.lo: int | None = 0 if zero_failed else None  # largest k known to fail
        self.hi: int | None = None  # smallest k known to pass
        self.done = False
        self.result: int | None = None
        if zero_failed and n == 0:
            self.done = True

    def next(self) -> int | None:
        if self.done:
            return None
        if self.lo is None:
            return 0
        if self.hi is None:
            return self.n
        return (self.lo + self.hi) // 2

    def record(self, k: int, passed: bool) -> None:
        if k != self.next():
            raise ValueError(f"expected the outcome of k={self.next()}, got k={k}")
        if passed:
            self.hi = k
        else:
            self.lo = k
        if self.hi == 0 or (self.lo == self.n) or (self.hi is not None and self.hi - self.lo <= 1):
            self.done = True
            self.result = self.hi

    def probes_left(self) -> int:
        """At most this many more probes."""
        if self.done:
            return 0
        if self.lo is None:
            return 1 + (1 + _log2_ceil(self.n) if self.n else 0)
        if self.hi is None:
            return 1 + _log2_ceil(self.n)
        return _log2_ceil(self.hi - self.lo)
