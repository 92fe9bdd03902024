"""The FP32 convolution layout policies a program can be compiled with, and the choice between them.

Which activation layout an FP32 convolution asks oneDNN for trades kernel speed against reorders: the
blocked nChw16c kernels are the fastest on large tensors, but channel counts that are not multiples of 16
(GhostNet's 8, 12, 36, 60) pad and switch layouts, and at batch 1 the reorders between them can cost more
than the kernels save. No single policy wins everywhere (measured on this project's zoo: keeping an
arriving blocked layout ran RegNetY-400MF 18% faster at batch 1 and MnasNet 15% slower at batch 16;
channels-last everywhere ran a GhostNet 22-35% faster and MobileNetV2 8-20% slower), so the Predictor
compiles a small program under each and keeps the fastest (runtime.predictor), unless given one. The
policies compute the same values up to float summation order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

BLOCKED = "blocked"  # nChw16c where the channels allow it, else what oneDNN picks (the default)
KEEP_ARRIVAL = "keep_arrival"  # also keep a blocked input blocked, padded channels included
CHANNELS_LAST = "channels_last"  # nhwc for every FP32 convolution
POLICIES = (BLOCKED, KEEP_ARRIVAL, CHANNELS_LAST)
AUTO = "auto"  # the Predictor's default: time the policies once per input shape and keep the fastest

# Tune only programs whose one run takes between these (seconds): on bigger ones the convolutions dominate
# and the policies measured within noise of each other, while timing them would cost seconds; on tiny ones
# (test graphs) there is nothing to win and timer noise would decide.
TUNE_BELOW_S = 0.1
TUNE_ABOVE_S = 0.001
# An alternative replaces the default only when it is this much faster: clear wins are chosen the same way
# run after run, so the choice (and the FP32 result's last bits) is stable; pin a policy for bitwise
# reproducibility across machines.
MARGIN = 0.10
ROUNDS = 3


def best_run_time(run: Callable[[], object], min_seconds: float = 0.02) -> float:
    """The mean time of back-to-back runs over at least `min_seconds` (at least one run)."""
    start, count = time.perf_counter(), 0
    while True:
        run()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / count


def choose(runs: dict[str, Callable[[], object]]) -> tuple[str, dict[str, float]]:
    """The fastest policy of `runs` (policy -> one run of its program), over ROUNDS interleaved rounds;
    BLOCKED unless another beats it by MARGIN. Returns the choice and each policy's best time."""
    for run in runs.values():
        run()  # first touch of the arena and the weights
    best = {name: float("inf") for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            best[name] = min(best[name], best_run_time(run))
    choice = min(best, key=best.get)
    if BLOCKED in best and best[choice] > best[BLOCKED] * (1 - MARGIN):
        choice = BLOCKED
    return choice, best
