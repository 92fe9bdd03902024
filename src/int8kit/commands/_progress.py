"""Progress of the long steps: a rich bar with ETA on a terminal, a line every INTERVAL seconds otherwise.

Library code reports `(done, total)` through a callback; this module decides how the CLI shows it. Piped
or logged output gets periodic plain lines (no bar redraws), so CI logs and `| tee` stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal

Update = Callable[[int, int], None]


def duration(seconds: float) -> str:
    """0.4 s, 12 s, 3 min 20 s, 1 h 05 min."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _is_terminal() -> bool:
    from rich.console import Console

    return Console(stderr=True).is_terminal


@contextmanager
def progress(description: str, unit: str = "batches", enabled: bool = True) -> Iterator[Update]:
    """Yield an `update(done, total)` callback that shows how far `description` is."""
    if not enabled:
        yield lambda done, total: None
        return
    if _is_terminal():
        with _bar(description) as update:
            yield update
        return
    start = time.perf_counter()
    last = [start]

    def update(done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - last[0] < INTERVAL:
            return
        last[0] = now
        elapsed = now - start
        eta = elapsed / done * (total - done) if done else float("nan")
        pct = 100 * done / total if total else 100.0
        tail = "done" if done >= total else f"ETA {duration(eta)}" if done else "ETA unknown"
        line = f"{description}: {done}/{total} {unit} ({pct:.0f}%), {duration(elapsed)} elapsed, {tail}"
        print(line, file=sys.stderr, flush=True)

    yield update


@contextmanager
def _bar(description: str) -> Iterator[Update]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
