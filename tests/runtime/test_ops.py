"""Single-op graphs through the Predictor (intake, fusion, lowering) against onnxruntime.

Each case builds one small ONNX graph with onnx.helper; where an activation has both a standalone
lowering and a fused post-op form, both are checked (alone on the input, and after a Conv).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from ._util import assert_close, init, make_model, run_ort, vinfo

N = 2  # batch: > 1 so per-image offsets matter


def rand(*shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def check(nodes, x_shape, initializers=(), extra_inputs=(), rtol=1e-4):
    """Run the graph (input "x", output "y") in int8kit and onnxruntime and compare."""
    from int8kit.runtime.predictor import Predictor

    model, feeds = build(nodes, x_shape, initializers, extra_inputs)
    want = run_ort(model, feeds)
    got = Predictor(model, num_threads=1).run_dict(feeds)["y"]
    assert_close(got, want, rtol)
    return got


def build(nodes, x_shape, initializers=(), extra_inputs=()):
    inputs = [vinfo("x", list(x_shape))] + [vinfo(name, list(shape)) for name, shape in extra_inputs]
    model = make_model(nodes, inputs, [vinfo("y", None)], initializers)
    feeds = {"x": rand(*x_shape, seed=1)}
    for i, (name, shape) in enumerate(extra_inputs):
        feeds[name] = rand(*shape, seed=2 + i)
    return model, feeds


def relu_then(node):
    """[Relu(x) -> "r", node reading "r"]: a shape op on a computed tensor, not on the caller's array."""
    node.input[0] = "r"
    return [helper.make_node("Relu", ["x"], ["r"]), node]


# ---- convolution ---------------------------------------------------------------------------------
CONVS = {
    "groups": dict(c=4, oc=6, k=3, attrs=dict(group=2, pads=[1, 1, 1, 1])),
    "depthwise": dict(c=8, oc=8, k=3, attrs=dict(group=8, pads=[1, 1, 1, 1])),
    "depthwise_x2": dict(c=4, oc=8, k=3, attrs=dict(group=4, pads=[1, 1, 1, 1])),
    "strides": dict(c=3, oc=5, k=3, attrs=dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "strides_hw": dict(c=3, oc=5, k=3, attrs=dict(strides=[1, 2])),
    "asymmetric_pads": dict(c=3, oc=4, k=3, attrs=dict(pads=[0, 1, 2, 1])),
    "dilations": dict(c=3, oc=4, k=3, attrs=dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    "dilation_stride": dict(c=3, oc=4, k=3, attrs=dict(dilations=[2, 1], strides=[2, 2], pads=[1, 0, 1, 0])),
    "same_upper": dict(c=3, oc=4, k=3, attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "same_upper_even_kernel": dict(c=3, oc=4, k=4, attrs=dict(auto_pad="SAME_UPPER")),
    "same_lower": dict(c=3, oc=4, k=4, attrs=dict(auto_pad="SAME_LOWER")),
    "valid": dict(c=3, oc=4, k=3, attrs=dict(auto_pad="VALID", strides=[2, 2])),
    "pointwise": dict(c=16, oc=24, k=1, attrs={}),
    "kernel_1x3": dict(c=3, oc=4, k=(1, 3), attrs=dict(pads=[0, 1, 0, 1])),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", sorted(CONVS))
def test_conv(case, bias):
    spec = CONVS[case]
    kh, kw = spec["k"] if isinstance(spec["k"], tuple) else (spec["k"], spec["k"])
    group = spec["attrs"].get("group", 1)
    w = rand(spec["oc"], spec["c"] // group, kh, kw, seed=5)
    inits = [init("w", w)]
    ins = ["x", "w"]
    if bias:
        inits.append(init("b", rand(spec["oc"], seed=6)))
        ins.append("b")
    check([helper.make_node("Conv", ins, ["y"], **spec["attrs"])], (N, spec["c"], 11, 13), inits)


@pytest.mark.parametrize("mode_pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 0, 0, 1, 0, 0, 3, 0]])
def test_pad_then_conv(mode_pads):
    """An explicit zero Pad folds into the Conv's pads (or runs as is): same result either way."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w", "b"], ["y"], strides=[2, 2]),
    ]
    inits = [
        init("pads", np.array(mode_pads, np.int64)),
        init("w", rand(4, 3, 3, 3, seed=5)),
        init("b", rand(4)),
    ]
    check(nodes, (N, 3, 12, 12), inits)


# ---- pooling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1),
        dict(kernel_shape=[2, 3], strides=[1, 2], pads=[1, 0, 0, 1]),
        dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2]),
    ],
    ids=str,
)
def test_maxpool(attrs):
    check([helper.make_node("MaxPool", ["x"], ["y"], **attrs)], (N, 4, 12, 11))


DILATED = [
    dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 3], strides=[3, 3], pads=[1, 1, 1, 1], dilations=[2, 2], ceil_mode=1),
    dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], dilations=[2, 3]),  # stride 1
    dict(kernel_shape=[1, 1], strides=[3, 3], dilations=[2, 2]),
]


@pytest.mark.parametrize("attrs", DILATED, ids=str)
@pytest.mark.parametrize("dtype", ["f32", "u8", "s8"])
def test_a_dilated_maxpool_matches_onnxruntime_on_optimised_kernels(attrs, dtype):
    """oneDNN 3.2 has only ref:any for dilated pooling: the taps' maximum and a 1x1 pool for the stride.
    u8/s8: the same pool between a QDQ file's zero-point grids, converted."""
    from int8kit.convert.pipeline import convert
    from int8kit.runtime.predictor import Predictor

    nodes = [helper.make_node("MaxPool", ["a"], ["p"], **attrs)]
    inits = []
    if dtype == "f32":
        nodes = [helper.make_node("Identity", ["x"], ["a"]), *nodes, helper.make_node("Identity", ["p"], ["y"])]
    else:
        zp = np.uint8(3) if dtype == "u8" else np.int8(-2)
        inits = [init("s", np.float32(0.02)), init("z", zp)]
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["a"]),
            *nodes,
            helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"]),
            helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"]),
        ]
    model, feeds = build(nodes, (N, 5, 13, 12), inits)
    if dtype != "f32":
        model = ir.serde.serialize_model(convert(model).model)
    predictor = Predictor(model, num_threads=1)
    np.testing.assert_allclose(predictor.run_dict(feeds)["y"], run_ort(build(nodes, (N, 5, 13, 12), inits)[0], feeds),
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    kernels = predictor.kernels(feeds["x"].shape)
    assert not [k for k in kernels if k[1].startswith("ref")], kernels
    assert any("(tap " in label for label, _ in kernels), kernels


@pytest.mark.parametrize("ceil_mode", [0, pytest.param(1, id="ceil")])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(count_include_pad, ceil_mode):
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=count_include_pad,
        ceil_mode=ceil_mode,
    )
    # with both, the last window overhangs the explicit padding: ONNX counts the padding, not the overhang
    check([node], (N, 4, 10, 9))


@pytest.mark.parametrize(
    ("kernel", "stride", "pads", "size"),
    [
        (2, 2, [0, 0, 0, 0], (7, 7)),  # torch's AvgPool2d(2, ceil_mode=True) of an odd size
        (3, 2, [0, 0, 0, 0], (8, 9)),
        (3, 2, [1, 0, 0, 1], (9, 8)),  # asymmetric padding, overhang on one axis only
        (3, 3, [1, 1, 1, 1], (10, 10)),
    ],
    ids=str,
)
def test_average_pool_counts_padding_but_not_the_ceil_overhang(kernel, stride, pads, size):
    """Caffe and torch semantics, which the ONNX spec and onnxruntime follow: the divisor of a ceil_mode
    window past the padding counts the explicit padding but not the cells beyond it."""
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        pads=pads,
        ceil_mode=1,
        count_include_pad=1,
    )
    check([node], (N, 4, *size))


def test_average_pool_ceil_include_pad_without_overhang():
    """ceil_mode with count_include_pad is fine when the last window ends inside the explicit padding."""
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
        count_include_pad=1,
    )
    check([node], (N, 4, 11, 11))


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_average_pool_auto_pad(auto_pad, count_include_pad):
    """auto_pad padding counts as padding (it used to be refused as a ceil-mode overhang)."""
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        auto_pad=auto_pad,
        count_include_pad=count_include_pad,
    )
    check([node], (N, 4, 10, 9))


def test_global_average_pool():
    check([helper.make_node("GlobalAveragePool", ["x"], ["y"])], (N, 6, 7, 5))


def test_global_average_pool_after_conv():
    """GAP on oneDNN's blocked conv output (the classifier-head case)."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["y"]),
    ]
    check(nodes, (N, 3, 9, 9), [init("w", rand(20, 3, 3, 3, seed=4))])


# ---- layout ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_flatten(axis):
    check(relu_then(helper.make_node("Flatten", ["x"], ["y"], axis=axis)), (N, 3, 4, 5))


def test_flatten_after_conv():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Flatten", ["c"], ["y"])]
    check(nodes, (N, 3, 6, 6), [init("w", rand(17, 3, 3, 3, seed=4))])


@pytest.mark.parametrize("shape", [[0, -1], [0, 3, -1], [-1, 5], [0, 0, 20], [0, 4, 15]])
def test_reshape(shape):
    nodes = relu_then(helper.make_node("Reshape", ["x", "shape"], ["y"]))
    check(nodes, (N, 3, 4, 5), [init("shape", np.array(shape, np.int64))])


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 2, 3]])
def test_transpose(perm):
    check([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], (N, 3, 4, 5))


GRAPH_INPUT_VIEW_CASES = {
    "Flatten": ([helper.make_node("Flatten", ["x"], ["y"])], []),
    "Reshape": ([helper.make_node("Reshape", ["x", "s"], ["y"])], [init("s", np.array([0, -1], np.int64))]),
    "Unsqueeze": ([helper.make_node("Unsqueeze", ["x", "a"], ["y"])], [init("a", np.array([1], np.int64))]),
    "Flatten_Gemm": (
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)],
        [init("w", rand(5, 60, seed=3))],
    ),
}

_SUBPROCESS_RUN = """
import sys, numpy as np, onnx
from int8kit.runtime.predictor import Predictor
x = np.load(sys.argv[2])
np.save(sys.argv[3], Predictor(onnx.load(sys.argv[1]), num_threads=1).run(x))
"""


@pytest.mark.parametrize("case", sorted(GRAPH_INPUT_VIEW_CASES))
def test_shape_op_on_graph_input(case, tmp_path):
    """A reshape-like op reading the caller's array directly (run in a subprocess: it used to segfault)."""
    import subprocess
    import sys

    import onnx

    nodes, inits = GRAPH_INPUT_VIEW_CASES[case]
    model, feeds = build(nodes, (N, 3, 4, 5), inits)
    onnx.save(model, tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", feeds["x"])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SUBPROCESS_RUN,
            str(tmp_path / "m.onnx"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"Predictor process died (status {proc.returncode}): {proc.stderr[-500:]}"
    assert_close(np.load(tmp_path / "y.npy"), run_ort(model, feeds))


def test_transpose_default_perm():
    check([helper.make_node("Transpose", ["x"], ["y"])], (N, 3, 4))


@pytest.mark.parametrize("axis", [1, 3, -1])
def test_concat(axis):
    other = [N, 3, 4, 5]
    other[axis] = 2
    node = helper.make_node("Concat", ["x", "z"], ["y"], axis=axis)
    check([node], (N, 3, 4, 5), extra_inputs=[("z", other)])


def test_concat_of_conv_outputs():
    """Concat of two conv branches (blocked layouts) along channels, as in Inception."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"]),
        helper.make_node("Concat", ["a", "b", "x"], ["y"], axis=1),
    ]
    inits = [init("w1", rand(16, 3, 3, 3, seed=3)), init("w2", rand(8, 3, 1, 1, seed=4))]
    check(nodes, (N, 3, 8, 8), inits)


def test_squeeze_unsqueeze():
    nodes = [
        helper.make_node("Relu", ["x"], ["x1"]),
        helper.make_node("Unsqueeze", ["x1", "ax_u"], ["u"]),
        helper.make_node("Relu", ["u"], ["r"]),
        helper.make_node("Squeeze", ["r", "ax_s"], ["y"]),
    ]
    inits = [init("ax_u", np.array([1, -1], np.int64)), init("ax_s", np.array([-1], np.int64))]
    check(nodes, (N, 3, 4), inits)


def test_squeeze_without_axes():
    check(relu_then(helper.make_node("Squeeze", ["x"], ["y"])), (N, 1, 5, 1))


# ---- dense ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha_beta", [(1.0, 1.0), (0.5, 2.0)])
def test_gemm(trans_b, alpha_beta):
    k, m = 12, 7
    w = rand(m, k, seed=3) if trans_b else rand(k, m, seed=3)
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b, alpha=alpha_beta[0], beta=alpha_beta[1])
    check([node], (N, k), [init("w", w), init("c", rand(m, seed=4))])


def test_gemm_without_bias_after_flatten():
    nodes = [helper.make_node("Flatten", ["r"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    check([helper.make_node("Relu", ["x"], ["r"]), *nodes], (N, 3, 2, 2), [init("w", rand(5, 12, seed=3))])


def test_matmul_add():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    check(nodes, (N, 16), [init("w", rand(16, 9, seed=3)), init("b", rand(9, seed=4))])


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax(axis):
    check([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], (N, 10))


@pytest.mark.parametrize("axis", [-1, 1])
def test_log_softmax(axis):
    check([helper.make_node("LogSoftmax", ["x"], ["y"], axis=axis)], (N, 10))


def test_softmax_4d():
    check([helper.make_node("Softmax", ["x"], ["y"], axis=1)], (N, 5, 3, 4))


# ---- activations -----------------------------------------------------------------------------------
def _clip_nodes(src):
    return [helper.make_node("Clip", [src, "lo", "hi"], ["y"])], [
        init("lo", np.array(-0.5, np.float32)),
        init("hi", np.array(0.7, np.float32)),
    ]


ACTIVATIONS = {
    "Relu": lambda s: ([helper.make_node("Relu", [s], ["y"])], []),
    "Sigmoid": lambda s: ([helper.make_node("Sigmoid", [s], ["y"])], []),
    "Tanh": lambda s: ([helper.make_node("Tanh", [s], ["y"])], []),
    "HardSigmoid": lambda s: ([helper.make_node("HardSigmoid", [s], ["y"])], []),
    "HardSigmoid_ab": lambda s: ([helper.make_node("HardSigmoid", [s], ["y"], alpha=1 / 6, beta=0.4)], []),
    "HardSwish": lambda s: ([helper.make_node("HardSwish", [s], ["y"])], []),
    "Clip": _clip_nodes,
    "Clip_min_only": lambda s: (
        [helper.make_node("Clip", [s, "lo"], ["y"])],
        [init("lo", np.array(0.1, np.float32))],
    ),
    "Clip_max_only": lambda s: (
        [helper.make_node("Clip", [s, "", "hi"], ["y"])],
        [init("hi", np.array(0.3, np.float32))],
    ),
    "LeakyRelu": lambda s: ([helper.make_node("LeakyRelu", [s], ["y"], alpha=0.1)], []),
    "LeakyRelu_default": lambda s: ([helper.make_node("LeakyRelu", [s], ["y"])], []),
}


@pytest.mark.parametrize("after_conv", [False, True], ids=["alone", "after_conv"])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation(act, after_conv):
    """Alone it is a oneDNN eltwise primitive; after a Conv it becomes a fused post-op."""
    nodes, inits = ACTIVATIONS[act]("c" if after_conv else "x")
    if after_conv:
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), *nodes]
        inits = [*inits, init("w", rand(8, 3, 3, 3, seed=3)), init("b", rand(8, seed=4))]
    check(nodes, (N, 3, 6, 7), inits)


# ---- binary ------------------------------------------------------------------------------------------
def test_mul_squeeze_excite():
    """x * sigmoid(GAP(x)): the [N, C, 1, 1] gate broadcasts over H and W."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),
    ]
    check(nodes, (N, 8, 5, 6))


def test_mul_squeeze_excite_gate_first():
    """The gate as the first operand: the engine must swap operands (Mul is commutative)."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("HardSigmoid", ["g"], ["s"]),
        helper.make_node("Mul", ["s", "c"], ["y"]),
    ]
    check(nodes, (N, 3, 5, 6), [init("w", rand(16, 3, 3, 3, seed=3))])


@pytest.mark.parametrize("const_shape", [(), (1,), (4, 1, 1), (1, 4, 1, 1), (5,), (3, 5)])
def test_add_constant(const_shape):
    check([helper.make_node("Add", ["x", "c"], ["y"])], (N, 4, 3, 5), [init("c", rand(*const_shape, seed=7))])


@pytest.mark.parametrize("op", ["Add", "Mul", "Sub", "Div", "Max", "Min"])
def test_binary_same_shape(op):
    check([helper.make_node(op, ["x", "z"], ["y"])], (N, 4, 3, 5), extra_inputs=[("z", [N, 4, 3, 5])])


def test_add_residual_after_conv():
    """Conv + Add(x) becomes a sum post-op in the conv's output buffer."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "x"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    check(nodes, (N, 8, 6, 6), [init("w", rand(8, 8, 3, 3, seed=3, scale=0.2)), init("b", rand(8, seed=4))])


@pytest.mark.parametrize("batch", [1, 4])
def test_batchnorm_after_global_pooling(batch):
    """A BN on [N, C, 1, 1] (a head after global pooling) runs as an int8kit.Affine: oneDNN 3.2's jit binary
    kernel with a per-channel binary post-op computes wrong values there for N > 1, so it runs as [N, C]."""
    c = 24
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("BatchNormalization", ["g", "gamma", "beta", "mean", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["y"]),
    ]
    inits = [
        init("gamma", rand(c, seed=7) + 2),
        init("beta", rand(c, seed=8)),
        init("mean", rand(c, seed=9) * 0.1),
        init("var", np.abs(rand(c, seed=10)) + 0.5),
    ]
    check(nodes, (batch, c, 5, 5), inits)
