"""Images per second of several Predictors on the same batch, timed interleaved so load spikes hit all alike."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

TRIALS = 3


def images_per_second(predictors: Mapping[str, object], batch: np.ndarray, seconds: float) -> dict[str, float]:
    """Best of TRIALS timings per predictor, each about seconds / TRIALS long, after one warm-up run."""
    for p in predictors.values():
        p.run(batch)  # compile and warm up
    best = dict.fromkeys(predictors, 0.0)
    slice_ = seconds / TRIALS
    for _ in range(TRIALS):
        for name, p in predictors.items():
            runs, start = 0, time.perf_counter()
            while True:
                p.run(batch)
                runs += 1
                elapsed = time.perf_counter() - start
                if elapsed >= slice_:
                    break
            best[name] = max(best[name], runs * len(batch) / elapsed)
    return best
