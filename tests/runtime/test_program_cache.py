"""The per-shape program cache is bounded (LRU) and absurd shapes are refused before allocating."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from onnx import helper

from int8kit.errors import ConfigError, InputError
from int8kit.models import zoo
from int8kit.runtime.predictor import DEFAULT_PROGRAM_CACHE_SIZE, MAX_TENSOR_BYTES_ENV, Predictor

from ._util import run_ort


@pytest.fixture(scope="module")
def tiny():
    return zoo.build("resnet_tiny", size=16)


def _x(batch: int) -> np.ndarray:
    return np.random.default_rng(batch).standard_normal((batch, 3, 16, 16)).astype(np.float32)


def test_cache_keeps_the_most_recently_used_shapes(tiny):
    p = Predictor(tiny, num_threads=1, program_cache_size=3)
    for batch in (1, 2, 3, 4):
        p.run(_x(batch))
    assert p.cached_shapes == [((b, 3, 16, 16),) for b in (2, 3, 4)]
    p.run(_x(2))  # a hit: 2 becomes the most recent, nothing compiled
    assert p.compiles == 4
    assert p.cached_shapes == [((b, 3, 16, 16),) for b in (3, 4, 2)]
    got = p.run(_x(1))  # evicted earlier: compiled again, still right
    assert p.compiles == 5
    assert p.cached_shapes == [((b, 3, 16, 16),) for b in (4, 2, 1)]
    np.testing.assert_allclose(got, run_ort(tiny, {"input": _x(1)}), rtol=1e-4, atol=1e-4)


def test_evicted_programs_are_freed(tiny):
    """Issue 9 row 'many batch sizes': memory stops growing once the cache is full."""
    # one layout policy: AUTO times the policies per shape, and what a timing keeps is not this test's subject
    p = Predictor(tiny, num_threads=1, program_cache_size=2, layout_policy="blocked")
    p.run(_x(1))
    first = weakref.ref(p.program({"input": (1, 3, 16, 16)}))
    tracemalloc.start()
    try:
        for batch in range(2, 12):
            p.run(_x(batch))
        gc.collect()
        grown_10 = tracemalloc.get_traced_memory()[0]
        for batch in range(12, 42):
            p.run(_x(batch))
        gc.collect()
        grown_40 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert first() is None
    assert len(p.cached_shapes) == 2
    # 30 more shapes compiled, each arena larger than the last, yet traced memory did not grow with them
    assert grown_40 < grown_10 * 1.5 + (1 << 20), (grown_10, grown_40)


def test_cache_size_is_validated_and_documented(tiny):
    assert Predictor(tiny, num_threads=1).program_cache_size == DEFAULT_PROGRAM_CACHE_SIZE >= 1
    assert "program_cache_size" in Predictor.__doc__
    with pytest.raises(ConfigError, match="program cache size"):
        Predictor(tiny, program_cache_size=0)


def _big_input_model():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "big",
        [helper.make_tensor_value_info("x", 1, [1, 3, 100000, 100000])],
        [helper.make_tensor_value_info("y", 1, [1, 3, 100000, 100000])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_absurd_input_shape_refused_before_allocating():
    """Issue 9: a Predictor compiled for 1x3x100000x100000 failed with MemoryError (745 GiB)."""
    p = Predictor(_big_input_model(), num_threads=1)
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as info:
            p.program({"x": (1, 3, 100000, 100000)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    want = 1 * 3 * 100000 * 100000 * 4
    assert f"{want} bytes" in message and "111.8 GiB" in message
    assert "dimension 2 is 100000" in message and "'x'" in message
    assert MAX_TENSOR_BYTES_ENV in message and "\n" not in message
    assert peak < 64 << 20
    assert p.compiles == 0


def test_intermediate_tensor_counts_and_limit_is_settable(tiny, monkeypatch):
    """The largest tensor may be an intermediate: resnet_tiny's first conv makes 16 channels from 3."""
    batch = 64
    first_conv = batch * 16 * 16 * 16 * 4  # N x 16 x 16 x 16 float32, larger than the 3-channel input
    input_bytes = batch * 3 * 16 * 16 * 4
    p = Predictor(tiny, num_threads=1, max_tensor_bytes=first_conv - 1)
    assert input_bytes < p.max_tensor_bytes
    with pytest.raises(InputError, match=f"{first_conv} bytes"):
        p.run(_x(batch))
    assert Predictor(tiny, num_threads=1, max_tensor_bytes=first_conv).run(_x(batch)).shape == (batch, 10)
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, str(first_conv - 1))
    with pytest.raises(InputError, match="over the limit"):
        Predictor(tiny, num_threads=1).run(_x(batch))
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "lots")
    with pytest.raises(ConfigError, match=MAX_TENSOR_BYTES_ENV):
        Predictor(tiny, num_threads=1)
