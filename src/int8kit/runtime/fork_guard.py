"""Keep oneDNN usable in a child forked after a multi-threaded run (os.fork, multiprocessing `fork`, PySpark).

GNU OpenMP keeps each OS thread's worker pool in that thread's thread-local state. A forked child holds
only the thread that called fork, and that thread's pool still lists the parent's OpenMP workers, which do
not exist in the child: its next parallel region waits for them forever. A thread created in the child
starts with no pool, so it runs OpenMP normally (checked here: same results as the parent, no hang).

So after a fork, `call` runs oneDNN work that the surviving thread asks for on a fresh helper thread; every
other thread (created after the fork) runs it directly. `os.register_at_fork` also resets what a parent
thread may have held at the moment of the fork (locks, worker pools) through `on_fork_in_child`.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_survivor: int | None = None  # ident of the thread that called fork, in the newest child; None in the original
_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()
_resetters: weakref.WeakSet = weakref.WeakSet()


def in_forked_child() -> bool:
    """True in a process created by fork (after int8kit.runtime was imported)."""
    return _survivor is not None


def needs_fresh_thread() -> bool:
    """True on the thread that survived a fork: its GNU OpenMP pool is stale."""
    return _survivor is not None and threading.get_ident() == _survivor


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs), on a fresh helper thread when the calling thread's OpenMP state is stale."""
    if not needs_fresh_thread():
        return fn(*args, **kwargs)
    global _helper
    with _helper_lock:
        if _helper is None:
            logger.info("forked child: running oneDNN on a fresh thread (the forking thread's OpenMP pool is stale)")
            _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="int8kit-after-fork")
        helper = _helper
    return helper.submit(fn, *args, **kwargs).result()


def on_fork_in_child(obj: object) -> None:
    """Call `obj._after_fork_in_child()` in every forked child while `obj` lives (reset locks and pools)."""
    _resetters.add(obj)


def _after_fork_in_child() -> None:
    global _survivor, _helper, _helper_lock
    _survivor = threading.get_ident()
    _helper = None  # its thread, if any, does not exist in this process
    _helper_lock = threading.Lock()
    for obj in list(_resetters):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
