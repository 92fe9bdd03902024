"""Running a batch in slices: only graphs that treat images independently, and the same numbers as onnxruntime.

Each refusal case is a graph that runs fine whole but would give a different answer in slices (softmax or
concat over the batch, the batch size used as a number, a flatten of the whole batch): the check must
catch every one, and a plain CNN must pass it.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from int8kit.errors import ConfigError
from int8kit.ir import batch_split
from int8kit.runtime.predictor import Predictor, prepare_model

from ._util import assert_close, init, make_model, run_ort, vinfo

C = 4


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def cnn(tail=(), tail_inits=(), out_shape=("N", 3)):
    """conv -> relu -> global pool -> flatten -> gemm over a symbolic batch, then `tail` nodes on "logits"."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["logits" if tail else "y"], transB=1),
        *tail,
    ]
    inits = [init("w", rand(C, 3, 3, 3, seed=1) * 0.3), init("fc", rand(3, C, seed=2)), init("fb", rand(3, seed=3))]
    return make_model(nodes, [vinfo("x", ["N", 3, 8, 8])], [vinfo("y", list(out_shape))], [*inits, *tail_inits])


def blocker(model):
    return batch_split.split_blocker(prepare_model(model).graph)


def test_a_plain_cnn_can_run_in_slices():
    assert blocker(cnn()) is None


@pytest.mark.parametrize(
    ("tail", "inits", "out_shape", "why"),
    [
        ([helper.make_node("Softmax", ["logits"], ["y"], axis=0)], [], ("N", 3), "along the batch axis"),
        ([helper.make_node("Concat", ["logits", "logits"], ["y"], axis=0)], [], (None, 3), "batch axis"),
        (
            [helper.make_node("Reshape", ["logits", "flat"], ["y"])],
            [init("flat", np.array([1, -1]))],
            (1, None),
            "first dim",
        ),
        ([helper.make_node("ReduceMean", ["logits"], ["y"], axes=[0], keepdims=1)], [], (1, 3), "batch axis"),
        ([helper.make_node("Transpose", ["logits"], ["y"], perm=[1, 0])], [], (3, "N"), "batch axis"),
        ([helper.make_node("Shape", ["logits"], ["y"])], [], (2,), "not computed from the images"),
        (
            [
                helper.make_node("Shape", ["logits"], ["s"]),
                helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
                helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
                helper.make_node("Mul", ["logits", "nf"], ["y"]),
            ],
            [init("zero", np.array(0))],
            ("N", 3),
            "size of the batch as data",
        ),
    ],
    ids=[
        "softmax-axis0",
        "concat-axis0",
        "flatten-whole-batch",
        "reduce-batch",
        "transpose",
        "shape-output",
        "batch-size-as-data",
    ],
)
def test_graphs_that_mix_images_are_refused(tail, inits, out_shape, why):
    reason = blocker(cnn(tail, inits, out_shape))
    assert reason is not None and why in reason, reason


def test_an_op_of_unknown_batch_behaviour_is_refused():
    """Einsum is outside the engine, so check the raw graph (shapes from onnx's inference)."""
    model = cnn([helper.make_node("Einsum", ["logits"], ["y"], equation="nc->nc")])
    graph = ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(model)).graph
    reason = batch_split.split_blocker(graph)
    assert reason is not None and "not known to treat images independently" in reason


def test_a_batch_size_reshape_target_is_allowed():
    """x.view(x.size(0), -1): the slice's own size is the right target."""
    tail = [
        helper.make_node("Shape", ["logits"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["logits", "target"], ["y"]),
    ]
    inits = [init("zero", np.array(0)), init("ax", np.array([0])), init("minus1", np.array([-1]))]
    model = cnn(tail, inits)
    assert blocker(model) is None
    x = rand(7, 3, 8, 8, seed=4)
    assert_close(Predictor(model, num_threads=1, slice_images=3).run(x), run_ort(model, {"x": x}))


@pytest.mark.parametrize("batch", [1, 3, 7, 9])
def test_sliced_runs_match_onnxruntime_and_the_whole_batch(batch):
    model = cnn()
    x = rand(batch, 3, 8, 8, seed=5)
    sliced = Predictor(model, num_threads=1, slice_images=3)
    whole = Predictor(model, num_threads=1, slice_images=0)
    got = sliced.run(x)
    assert_close(got, run_ort(model, {"x": x}))
    np.testing.assert_array_equal(got, whole.run(x))
    compiled = {key[0][0] for key in sliced.cached_shapes}
    assert compiled == ({batch} if batch <= 3 else {3, batch % 3} - {0})


def test_a_refused_graph_runs_whole_with_the_same_answer():
    model = cnn([helper.make_node("Softmax", ["logits"], ["y"], axis=0)])
    p = Predictor(model, num_threads=1, slice_images=2)
    assert p.slice_images == 0
    x = rand(5, 3, 8, 8, seed=6)
    assert_close(p.run(x), run_ort(model, {"x": x}))


def test_slice_size_follows_the_cache_budget():
    budget = batch_split.CACHE_BUDGET_BYTES
    assert batch_split.slice_size(budget // 10, num_threads=1) == 10
    assert batch_split.slice_size(budget * 4, num_threads=1) == 1
    assert batch_split.slice_size(budget // 10, num_threads=2) == 0  # oneDNN splits the batch between threads
    assert [(s.start, s.stop) for s in batch_split.slices(7, 3)] == [(0, 3), (3, 6), (6, 7)]


def test_negative_slice_size_is_a_config_error():
    with pytest.raises(ConfigError, match="slice_images"):
        Predictor(cnn(), slice_images=-1)
