"""The arena planner, checked by brute force: no two buffers alive at once share a byte."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from int8kit.runtime.memory_plan import ALIGNMENT, Buffer, plan


def check_plan(buffers: list[Buffer], arena: int) -> None:
    for b in buffers:
        assert b.offset >= 0 and b.offset % ALIGNMENT == 0, b
        assert b.offset + b.size <= arena, (b, arena)
    for a, b in itertools.combinations(buffers, 2):
        alive_together = a.first <= b.last and b.first <= a.last
        bytes_overlap = a.offset < b.offset + b.size and b.offset < a.offset + a.size
        assert not (alive_together and bytes_overlap), (a, b)


def peak_live_bytes(buffers: list[Buffer]) -> int:
    """A lower bound on any valid arena: the most bytes alive at one step."""
    steps = range(min(b.first for b in buffers), max(b.last for b in buffers) + 1)
    return max(sum(b.size for b in buffers if b.first <= t <= b.last) for t in steps)


def random_buffers(rng: np.random.Generator, count: int, steps: int) -> list[Buffer]:
    out = []
    for _ in range(count):
        first = int(rng.integers(0, steps))
        last = first + int(rng.integers(0, 6))
        size = int(rng.choice([1, 63, 64, 65, 1000, 4096, 150_528, 802_816]) * rng.integers(1, 4))
        out.append(Buffer(size, first, last))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_random_lifetimes(seed):
    rng = np.random.default_rng(seed)
    buffers = random_buffers(rng, count=int(rng.integers(1, 60)), steps=40)
    arena = plan(buffers)
    check_plan(buffers, arena)
    aligned_total = sum(-(-b.size // ALIGNMENT) * ALIGNMENT for b in buffers)
    assert peak_live_bytes(buffers) <= arena <= aligned_total


def test_chain_reuses_memory():
    """A -> B -> C -> ...: each tensor dies when the next is made, so two slots serve the whole chain."""
    size = 1 << 20
    buffers = [Buffer(size, i, i + 1) for i in range(50)]
    arena = plan(buffers)
    check_plan(buffers, arena)
    assert arena == 2 * size
    assert len({b.offset for b in buffers}) == 2


def test_all_alive_at_once_get_disjoint_bytes():
    sizes = [100, 64, 1, 5000, 64]
    buffers = [Buffer(s, 0, 3) for s in sizes]
    arena = plan(buffers)
    check_plan(buffers, arena)
    assert arena == sum(-(-s // ALIGNMENT) * ALIGNMENT for s in sizes)


def test_residual_branch_keeps_its_buffer():
    """A skip connection alive across a block must not be overwritten by the block's tensors."""
    skip = Buffer(4096, 0, 5)
    block = [Buffer(4096, i, i + 1) for i in range(1, 5)]
    arena = plan([skip, *block])
    check_plan([skip, *block], arena)
    assert arena == 3 * 4096


def test_small_buffer_fits_in_a_gap():
    """A later small tensor goes into the hole a dead big one left, not at the end."""
    big, small = Buffer(1 << 16, 0, 1), Buffer(1000, 2, 3)
    keep = Buffer(1 << 16, 0, 3)
    arena = plan([big, keep, small])
    check_plan([big, keep, small], arena)
    assert arena == 2 << 16


def test_empty():
    assert plan([]) == 0
