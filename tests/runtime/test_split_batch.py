"""A single-stream batch of at least `num_threads` images runs as one part per thread, each part a
one-thread program on its own pinned worker: the same numbers as onnxruntime and as the batch run whole,
only where the graph treats images independently, and never inside throughput-mode streams."""

from __future__ import annotations

import numpy as np
from onnx import helper

from int8kit.runtime.predictor import Predictor, _ThreadsKey

from ._util import assert_close, run_ort
from .test_batch_split import cnn, rand


def _part_programs(p: Predictor) -> set[tuple]:
    return {(k.shapes[0][0], k.threads) for k in p._programs if isinstance(k, _ThreadsKey)}


def test_an_even_batch_runs_as_one_one_thread_part_per_thread():
    model = cnn()
    x = rand(6, 3, 8, 8, seed=4)
    p = Predictor(model, num_threads=2)
    got = p.run(x)
    assert _part_programs(p) == {(3, 1)}  # two parts of 3 images, each program compiled for one thread
    assert p.cached_shapes == []  # the two-thread program of the whole batch was never needed
    assert_close(got, run_ort(model, {"x": x}))
    whole = Predictor(model, num_threads=2, split_batch=False)
    np.testing.assert_allclose(got, whole.run(x), rtol=1e-5, atol=1e-6)
    assert _part_programs(whole) == set() and whole.cached_shapes == [((6, 3, 8, 8),)]


def test_uneven_batches_split_only_into_parts_of_four_or_more():
    p = Predictor(cnn(), num_threads=2)
    assert p._parallel_parts(3) is None and p._parallel_parts(1) is None
    assert p._parallel_parts(9) == [slice(0, 4), slice(4, 9)]
    x = rand(9, 3, 8, 8, seed=5)
    assert_close(p.run(x), run_ort(cnn(), {"x": x}))
    assert _part_programs(p) == {(4, 1), (5, 1)}


def test_a_graph_mixing_images_runs_whole():
    model = cnn([helper.make_node("Softmax", ["logits"], ["y"], axis=0)])
    x = rand(4, 3, 8, 8, seed=6)
    p = Predictor(model, num_threads=2)
    assert not p.split_batch
    assert_close(p.run(x), run_ort(model, {"x": x}))
    assert _part_programs(p) == set()


def test_throughput_streams_and_one_thread_never_split():
    x = rand(4, 3, 8, 8, seed=7)
    with Predictor(cnn(), num_threads=1, streams=2) as streams:
        streams.run_many([x, x])
        assert _part_programs(streams) == set()
    single = Predictor(cnn(), num_threads=1)
    single.run(x)
    assert _part_programs(single) == set()
