"""Shape arithmetic folded at compile time, Split/Slice windows and reductions, against onnxruntime.

Exporters write `x.view(x.size(0), -1)` and channel shuffles as Shape -> Gather -> Unsqueeze -> Concat
-> Reshape over a symbolic batch: the engine must fold that per compiled shape, at every batch size.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _run_both(model, x):
    got = Predictor(model, num_threads=1).run(x)
    assert_close(got, run_ort(model, {"x": x}))
    return got


def _conv(name, x, cin, cout, group=1, seed=0):
    w = rand(cout, cin // group, 3, 3, seed=seed) * 0.3
    return helper.make_node("Conv", [x, f"{name}.w"], [name], pads=[1, 1, 1, 1], group=group), init(f"{name}.w", w)


def channel_shuffle_model(groups=2, channels=8):
    """Conv -> the channel shuffle torch exports (Shape/Gather/Div/Cast/Unsqueeze/Concat/Reshape/Transpose)."""
    conv, w = _conv("c", "x", 4, channels)
    nodes = [conv, helper.make_node("Shape", ["c"], ["shape"])]
    inits = [w]
    for i in range(4):
        inits.append(init(f"i{i}", np.array(i, np.int64)))
        nodes.append(helper.make_node("Gather", ["shape", f"i{i}"], [f"d{i}"], axis=0))
    inits += [
        init("g", np.array(groups, np.int64)),
        init("ax0", np.array([0], np.int64)),
        init("m1", np.array([-1], np.int64)),
    ]
    nodes += [
        helper.make_node("Div", ["d1", "g"], ["cpg"]),
        helper.make_node("Cast", ["cpg"], ["cpg_i"], to=TensorProto.INT64),
    ]
    parts = []
    for name in ("d0", "g", "cpg_i", "d2", "d3"):
        nodes.append(helper.make_node("Unsqueeze", [name, "ax0"], [f"u_{name}"]))
        parts.append(f"u_{name}")
    nodes += [
        helper.make_node("Concat", parts, ["shape5"], axis=0),
        helper.make_node("Reshape", ["c", "shape5"], ["r5"]),
        helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Concat", ["u_d0", "m1", "u_d2", "u_d3"], ["shape4"], axis=0),
        helper.make_node("Reshape", ["t5", "shape4"], ["y"]),
    ]
    return make_model(nodes, [vinfo("x", ["N", 4, 6, 6])], [vinfo("y", None)], inits)


@pytest.mark.parametrize("batch", [1, 3])
def test_channel_shuffle_shape_subgraph_folds_per_batch(batch):
    model = channel_shuffle_model()
    predictor = Predictor(model, num_threads=1)
    x = rand(batch, 4, 6, 6, seed=batch)
    assert_close(predictor.run(x), run_ort(model, {"x": x}))
    # The same Predictor at another batch recompiles, and the folded shape follows the batch.
    x2 = rand(batch + 1, 4, 6, 6, seed=7)
    assert_close(predictor.run(x2), run_ort(model, {"x": x2}))


def test_flatten_head_written_as_shape_gather_reshape():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["p", "shape"], ["y"]),
    ]
    inits = [
        init("zero", np.array(0, np.int64)),
        init("ax0", np.array([0], np.int64)),
        init("m1", np.array([-1], np.int64)),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 16, 5, 5])], [vinfo("y", None)], inits)
    got = _run_both(model, rand(2, 16, 5, 5))
    assert got.shape == (2, 16)


@pytest.mark.parametrize(
    ("indices", "axis"),
    [(np.array(1, np.int64), 1), (np.array([1, 2], np.int64), 1), (np.array(-1, np.int64), 2), (np.array(0), 0)],
    ids=["scalar", "consecutive", "negative", "axis0"],
)
def test_gather_on_runtime_data_at_constant_indices_matches_onnxruntime(indices, axis):
    """Attention's q, k, v = qkv[0], qkv[1], qkv[2]: a window of the data, with the indices' rank."""
    nodes = [helper.make_node("Gather", ["x", "idx"], ["y"], axis=axis, name="pick")]
    model = make_model(nodes, [vinfo("x", [3, 4, 3, 3])], [vinfo("y", None)], [init("idx", indices)])
    _run_both(model, rand(3, 4, 3, 3))


def test_gather_on_runtime_data_at_scattered_indices_is_refused_naming_the_node():
    nodes = [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1, name="pick")]
    model = make_model(nodes, [vinfo("x", [1, 4, 3, 3])], [vinfo("y", None)], [init("idx", np.array([2, 0]))])
    with pytest.raises(UnsupportedOpError, match="pick.*consecutive"):
        Predictor(model, num_threads=1).run(rand(1, 4, 3, 3))


@pytest.mark.parametrize("channels_first", [4, 12])
def test_split_channels_then_concat(channels_first):
    """ShuffleNetV2's chunk(2): a Split over channels (also where the cut is not on a layout block)."""
    total = 32
    conv, w = _conv("c", "x", 3, total)
    nodes = [
        conv,
        helper.make_node("Split", ["c", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Relu", ["b"], ["rb"]),
        helper.make_node("Concat", ["a", "rb"], ["y"], axis=1),
    ]
    inits = [w, init("sizes", np.array([channels_first, total - channels_first], np.int64))]
    model = make_model(nodes, [vinfo("x", ["N", 3, 7, 7])], [vinfo("y", None)], inits)
    _run_both(model, rand(2, 3, 7, 7))


def test_split_equal_parts_without_sizes():
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1), helper.make_node("Sub", ["a", "b"], ["y"])]
    model = make_model(nodes, [vinfo("x", ["N", 8, 4, 4])], [vinfo("y", None)])
    _run_both(model, rand(2, 8, 4, 4))


def test_slice_on_data():
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])]
    inits = [
        init("starts", np.array([1, 2], np.int64)),
        init("ends", np.array([5, 100], np.int64)),
        init("axes", np.array([1, 3], np.int64)),
    ]
    model = make_model(nodes, [vinfo("x", ["N", 6, 4, 7])], [vinfo("y", None)], inits)
    got = _run_both(model, rand(2, 6, 4, 7))
    assert got.shape == (2, 4, 4, 5)


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps", "dims"),
    [
        ([0, 1], [8, 8], [1, 2], [2, 2], (4, 4)),
        ([1, 0], [7, 9], [1, 2], [2, 3], (3, 3)),
        ([0], [9], [2], [3], (8, 3)),
    ],
    ids=["patch-merging", "odd-start-and-step-3", "step-3-one-axis"],
)
def test_strided_slice_on_data_matches_onnxruntime(starts, ends, axes, steps, dims):
    """Swin's patch merging x[:, 0::2, 1::2] (channels last): every step-th element along H and W."""
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])]
    inits = [init("starts", np.array(starts)), init("ends", np.array(ends)), init("axes", np.array(axes))]
    inits.append(init("steps", np.array(steps)))
    model = make_model(nodes, [vinfo("x", ["N", 8, 9, 5])], [vinfo("y", None)], inits)
    assert _run_both(model, rand(2, 8, 9, 5)).shape == (2, *dims, 5)


@pytest.mark.parametrize(
    ("shape", "starts", "ends", "axes", "steps"),
    [
        ((1, 7, 3), [0], [7], [1], [2]),  # LeViT's subsample x[:, ::2] of 7 tokens: 4, the last group short
        ((2, 3, 7, 7), [0, 0], [7, 7], [2, 3], [2, 2]),  # both spatial axes of an odd map
        ((2, 3, 8, 11), [1, 2], [8, 11], [2, 3], [3, 4]),  # starts inside the first group, steps 3 and 4
        ((2, 5, 9), [4], [100], [2], [4]),  # a window of 5 for 2 picks of step 4
    ],
    ids=["levit", "odd-hw", "offset-steps", "short-tail"],
)
def test_a_strided_slice_whose_last_group_is_short_matches_onnxruntime(shape, starts, ends, axes, steps):
    """x[0::2] of 7 needs 4 elements from groups of 2 that would cover 8: the last group holds one, the only
    one read (was refused)."""
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], name="odd")]
    inits = [init("starts", np.array(starts)), init("ends", np.array(ends)), init("axes", np.array(axes))]
    inits.append(init("steps", np.array(steps)))
    model = make_model(nodes, [vinfo("x", list(shape))], [vinfo("y", None)], inits)
    _run_both(model, rand(*shape))  # values and shape against onnxruntime


def test_a_strided_slice_of_a_conv_output_with_a_short_last_group_matches_onnxruntime():
    """The conv leaves a blocked layout; the slice reads the plain copy of it."""
    w = rand(16, 3, 3, 3, seed=1) * 0.3
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Slice", ["c", "starts", "ends", "axes", "steps"], ["y"]),
    ]
    inits = [init("w", w), init("starts", np.array([0, 1])), init("ends", np.array([9, 9]))]
    inits += [init("axes", np.array([2, 3])), init("steps", np.array([2, 2]))]
    model = make_model(nodes, [vinfo("x", ["N", 3, 9, 9])], [vinfo("y", None)], inits)
    assert _run_both(model, rand(2, 3, 9, 9)).shape == (2, 16, 5, 4)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
def test_a_reduction_over_middle_axes_matches_onnxruntime_on_an_optimised_kernel(op):
    """A mean over H, W of channels-last [N, H, W, C] data (Swin's head): oneDNN only has ref:any for it."""
    nodes = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)]
    model = make_model(
        nodes, [vinfo("x", ["N", 5, 6, 16])], [vinfo("y", None)], [init("axes", np.array([1, 2]))], opset=18
    )
    _run_both(model, rand(2, 5, 6, 16))
    assert not [k for k in Predictor(model, num_threads=1).kernels((2, 5, 6, 16)) if k[1].startswith("ref")]


def test_six_dim_window_partition_matches_onnxruntime():
    """Swin's window partition: a reshape to six dims and a permute of them."""
    nodes = [
        helper.make_node("Reshape", ["x", "six"], ["w"]),
        helper.make_node("Transpose", ["w"], ["t"], perm=[0, 1, 3, 2, 4, 5]),
        helper.make_node("Reshape", ["t", "three"], ["y"]),
    ]
    inits = [init("six", np.array([2, 2, 4, 2, 4, 3])), init("three", np.array([-1, 16, 3]))]
    model = make_model(nodes, [vinfo("x", [2, 8, 8, 3])], [vinfo("y", None)], inits)
    _run_both(model, rand(2, 8, 8, 3))


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"])
@pytest.mark.parametrize(("axes", "keepdims"), [([2, 3], 0), ([2, 3], 1), ([1], 1), ([-1], 0)])
def test_reductions(op, axes, keepdims):
    if op == "ReduceSum":  # axes became an input in opset 13 for ReduceSum only
        nodes = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)]
        inits = [init("axes", np.array(axes, np.int64))]
    else:
        nodes, inits = [helper.make_node(op, ["x"], ["y"], axes=axes, keepdims=keepdims)], []
    model = make_model(nodes, [vinfo("x", ["N", 16, 5, 6])], [vinfo("y", None)], inits, opset=17)
    _run_both(model, rand(2, 16, 5, 6))


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
@pytest.mark.parametrize(("spatial", "keepdims"), [((4, 4), 1), ((4, 4), 0), ((7, 5), 1), ((1, 1), 0)])
def test_a_spatial_mean_or_max_after_a_conv_is_one_global_pool(op, spatial, keepdims):
    """timm's squeeze-excite x.mean((2, 3), keepdim=True): one pooling step on the conv's own layout, where a
    reduction needed a reorder to plain data first and cost per output point (2.3 ms at 16x1152x4x4)."""
    kernel = [3] * len(spatial)
    w = rand(32, 16, *kernel, seed=1) * 0.3
    conv = helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * (2 * len(spatial)))
    axes = list(range(2, 2 + len(spatial)))
    nodes = [conv, helper.make_node(op, ["c"], ["y"], "squeeze", axes=axes, keepdims=keepdims)]
    model = make_model(nodes, [vinfo("x", ["N", 16, *spatial])], [vinfo("y", None)], [init("w", w)], opset=17)
    x = rand(16, 16, *spatial, seed=2)
    _run_both(model, x)
    prog = Predictor(model, num_threads=1).program({"x": x.shape})
    steps = list(zip(prog.labels, prog.impls, strict=True))
    labels = [label for label, _ in steps if "squeeze" in label]
    # keepdims=0 may need one reorder to plain [N, C] (not where the pooled layout already is, as nChw8c of 1x1)
    assert labels[0] == "squeeze" and labels[1:] in ([], ["reorder for squeeze"] * (not keepdims)), steps
    assert not [impl for _, impl in steps if impl.startswith("ref")], steps


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum", "ReduceL2"])
@pytest.mark.parametrize(
    ("shape", "axes", "keepdims"),
    [
        ((600, 4), [1], 1),  # Hiera's mask-unit max: millions of outputs of 4 elements each
        ((2, 96, 4, 16), [3], 0),  # MobileViT-v2's attention over a 16-wide axis
        ((8, 7, 16, 6), [1, 3], 1),  # reduced axes around a kept one
        ((4, 32, 5, 3), [0], 0),  # the outermost axis
    ],
)
def test_few_elements_per_output_reduce_as_one_pooling_window(op, shape, axes, keepdims):
    """Reductions of at most POOL_REDUCED_UP_TO elements to each of many outputs: oneDNN's reduction costs
    hundreds of ns an output point there, so they run as a pooling window over the reduced axes moved
    outermost; the values must be onnxruntime's."""
    nodes = [helper.make_node(op, ["x", "axes"], ["y"], "red", keepdims=keepdims)]
    model = make_model(nodes, [vinfo("x", list(shape))], [vinfo("y", None)], [init("axes", np.array(axes))], opset=18)
    x = rand(*shape, seed=7)
    _run_both(model, x)
    labels = Predictor(model, num_threads=1).program({"x": x.shape}).labels
    assert "red (reduced axes outermost)" in labels, labels


def test_many_elements_per_output_stay_one_reduction():
    """A mean of 3136 elements an output streams through the reduction in place (no permuting copy)."""
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], "red", keepdims=1)]
    model = make_model(nodes, [vinfo("x", [64, 3136])], [vinfo("y", None)], [init("axes", np.array([1]))], opset=18)
    x = rand(64, 3136, seed=8)
    _run_both(model, x)
    assert Predictor(model, num_threads=1).program({"x": x.shape}).labels[0] == "red"


def test_reduce_mean_axes_as_input_opset18():
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)]
    model = make_model(
        nodes, [vinfo("x", ["N", 16, 5, 6])], [vinfo("y", None)], [init("axes", np.array([2, 3], np.int64))], opset=18
    )
    _run_both(model, rand(2, 16, 5, 6))


@pytest.mark.parametrize("group", [32, 6])
def test_grouped_convolution_runs_an_optimised_kernel(group):
    """Grouped convolutions whose groups are not whole layout blocks (ResNeXt, RegNet) avoid `ref:`."""
    channels = 128 if group == 32 else 48
    conv, w = _conv("y", "x", channels, channels, group=group)
    model = make_model([conv], [vinfo("x", ["N", channels, 14, 14])], [vinfo("y", None)], [w])
    predictor = Predictor(model, num_threads=1)
    x = rand(2, channels, 14, 14)
    assert_close(predictor.run(x), run_ort(model, {"x": x}))
    impls = [impl for _, impl in predictor.kernels(x.shape)]
    assert not any(i.startswith("ref") for i in impls), impls


def test_broadcast_multiply_on_blocked_layout_avoids_reference_kernels():
    """A per-channel Mul/Add after a blocked conv (a standalone BatchNorm, DenseNet) runs a jit kernel."""
    conv, w = _conv("c", "x", 16, 32)
    nodes = [
        conv,
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["y"]),
    ]
    inits = [w, init("scale", rand(1, 32, 1, 1, seed=3)), init("shift", rand(32, 1, 1, seed=4))]
    model = make_model(nodes, [vinfo("x", ["N", 16, 8, 8])], [vinfo("y", None)], inits)
    predictor = Predictor(model, num_threads=1)
    x = rand(2, 16, 8, 8)
    assert_close(predictor.run(x), run_ort(model, {"x": x}))
    refs = [(label, impl) for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]
    assert not refs, refs


def test_shape_arithmetic_model_quantizes_converts_and_agrees():
    """int8kit quantize leaves the int64 shape tensors alone; the QDQ model converts and agrees with onnxruntime."""
    from int8kit.convert.pipeline import convert
    from int8kit.quantize import QuantizeConfig, quantize_model

    model = channel_shuffle_model(groups=2, channels=8)
    calib = rand(8, 4, 6, 6, seed=0)
    qdq = quantize_model(model, calib, QuantizeConfig(num_samples=8, backend="onnxruntime"))
    shape_names = {
        o for n in qdq.graph.node if n.op_type in ("Shape", "Gather", "Unsqueeze", "Concat") for o in n.output
    }
    quantized = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized & {n for n in shape_names if not n.startswith("c")}, quantized
    int8 = convert(qdq).model
    # Shape reads only the shape: an INT8 tensor is not dequantized for it
    shape_inputs = [n.inputs[0].producer() for n in int8.graph if n.op_type == "Shape"]
    assert shape_inputs and not [p.name for p in shape_inputs if p is not None and p.op_type == "DequantizeLinear"]
    x = rand(16, 4, 6, 6, seed=1)
    got = Predictor(int8, num_threads=1).run(x).reshape(16, -1)
    want = run_ort(qdq, {"x": x}).reshape(16, -1)
    cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.mean() >= 0.999


@pytest.mark.parametrize(
    ("op", "shape", "axes", "keepdims"),
    [
        ("ReduceMax", (1, 2, 7, 4, 6, 3), [3], 0),  # Hiera's mask-unit attention: a middle axis of a 6-D view
        ("ReduceMax", (1, 2, 7, 4, 6, 3), [5], 1),
        ("ReduceSum", (2, 3, 4, 5, 6, 2), [4, 5], 1),
        ("ReduceMean", (2, 3, 4, 5, 6, 2), [1, 3], 0),
    ],
)
def test_high_rank_reductions_match_onnxruntime_on_optimised_kernels(op, shape, axes, keepdims):
    """oneDNN 3.2 reduces 6-D tensors only on ref:any; the engine reduces the same bytes in 2-D."""
    if op == "ReduceSum":  # axes became an input in opset 13
        nodes, inits = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)], [init("axes", np.array(axes))]
    else:
        nodes, inits = [helper.make_node(op, ["x"], ["y"], axes=axes, keepdims=keepdims)], []
    model = make_model(nodes, [vinfo("x", list(shape))], [vinfo("y", None)], inits)
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    predictor = Predictor(model, num_threads=1)
    np.testing.assert_allclose(predictor.run(x), run_ort(model, {"x": x}), rtol=1e-5, atol=1e-6)
    assert not [i for i in predictor.program({"x": shape}).impls if i.startswith("ref")]


def test_scatter_nd_of_constants_folds_and_on_run_time_data_is_refused_naming_the_node():
    """ConViT writes its relative-position table with ScatterND into zeros of the patch grid's shape: all
    known at compile time, so it folds; a ScatterND into computed data has no lowering and says so."""
    inits = [init("idx", np.array([[0, 1], [2, 3]])), init("upd", np.array([5.0, -2.0], np.float32))]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["zeros"], value=helper.make_tensor("v", 1, [1], [0.0])),
        helper.make_node("ScatterND", ["zeros", "idx", "upd"], ["table"]),
        helper.make_node("Add", ["x", "table"], ["y"]),
    ]
    model = make_model(nodes, [vinfo("x", [3, 4])], [vinfo("y", None)], inits)
    _run_both(model, rand(3, 4))
    runtime = make_model([helper.make_node("ScatterND", ["x", "idx", "upd"], ["y"], name="sc")],
                         [vinfo("x", [3, 4])], [vinfo("y", None)], inits)  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="node 'sc': ScatterND on data computed at run time"):
        Predictor(runtime, num_threads=1).run(rand(3, 4))
