"""Activations, normalisations and softmax axes of CNNs outside the zoo, against onnxruntime, on optimised
kernels: Elu, Selu, Celu, Softplus, Mish, PRelu (scalar and per-channel), InstanceNormalization (torch's
GroupNorm export) and Softmax over a middle axis (ResNeSt's split attention)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo

SHAPE = (2, 8, 6, 6)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _assert_matches_on_fast_kernels(model, x, opset_input="x"):
    predictor = Predictor(model, num_threads=1)
    assert_close(predictor.run_dict({opset_input: x})["y"], run_ort(model, {opset_input: x}))
    refs = [k for k in predictor.kernels(x.shape) if k[1].startswith("ref")]
    assert not refs, refs


ACTIVATIONS = [
    ("Elu", {}, 17),
    ("Elu", {"alpha": 0.3}, 17),
    ("Selu", {}, 17),
    ("Selu", {"alpha": 1.5, "gamma": 0.8}, 17),
    ("Celu", {"alpha": 0.5}, 17),
    ("Softplus", {}, 17),
    ("Mish", {}, 18),
]


@pytest.mark.parametrize(("op", "attrs", "opset"), ACTIVATIONS, ids=[f"{a[0]}{a[1]}" for a in ACTIVATIONS])
@pytest.mark.parametrize("after_conv", [False, True], ids=["alone", "after-conv"])
def test_activation_matches_onnxruntime(op, attrs, opset, after_conv):
    x = rand(*SHAPE, seed=1) * 2
    nodes, inits = [helper.make_node(op, ["a"], ["y"], **attrs)], []
    if after_conv:  # fused as a post-op where the op table has one (Elu, Softplus, Mish)
        nodes.insert(0, helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]))
        inits.append(init("w", rand(8, 8, 3, 3, seed=2) * 0.3))
    else:
        nodes.insert(0, helper.make_node("Identity", ["x"], ["a"]))
    model = make_model(nodes, [vinfo("x", ["N", *SHAPE[1:]])], [vinfo("y", None)], inits, opset=opset)
    _assert_matches_on_fast_kernels(model, x)


@pytest.mark.parametrize("after_conv", [False, True], ids=["alone", "after-conv"])
def test_sign_is_exact_at_zero_and_for_denormals(after_conv):
    x = rand(*SHAPE, seed=5)
    x.reshape(-1)[:6] = [0.0, -0.0, 1e-45, -1e-45, 1e-39, -3e38]
    nodes, inits = [helper.make_node("Sign", ["a"], ["y"])], []
    if after_conv:  # the conv leaves nChw16c, where a comparison with a scalar has only ref:any
        nodes.insert(0, helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]))
        inits.append(init("w", rand(16, 8, 3, 3, seed=2) * 0.3))
    else:
        nodes.insert(0, helper.make_node("Identity", ["x"], ["a"]))
    model = make_model(nodes, [vinfo("x", ["N", *SHAPE[1:]])], [vinfo("y", None)], inits)
    predictor = Predictor(model, num_threads=1)
    got = predictor.run(x)
    np.testing.assert_array_equal(got, run_ort(model, {"x": x}))
    if not after_conv:
        np.testing.assert_array_equal(got.reshape(-1)[:6], [0, 0, 1, -1, 1, -1])
    assert not [k for k in predictor.kernels(x.shape) if k[1].startswith("ref")]


def test_lp_pool_as_torch_exports_it_matches_onnxruntime(tmp_path):
    """torch writes LPPool2d as (sign(a) * relu(abs(a)) * k * k) ** (1 / p) of a = avgpool(x ** p)."""
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.LPPool2d(2, 3, 2)).eval()
    path = tmp_path / "lp.onnx"
    torch.onnx.export(
        net,
        torch.randn(1, *SHAPE[1:]),
        str(path),
        opset_version=17,
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}},
    )
    import onnx

    model = onnx.load(str(path))
    assert "Sign" in {n.op_type for n in model.graph.node}
    _assert_matches_on_fast_kernels(model, rand(*SHAPE, seed=6))


@pytest.mark.parametrize("slope_shape", [(1,), (8, 1, 1), (1, 8, 1, 1)], ids=["scalar", "per-channel", "rank-4"])
def test_prelu_matches_onnxruntime(slope_shape):
    slope = np.abs(rand(*slope_shape, seed=3)) * 0.3
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "slope"], ["y"]),
    ]
    inits = [init("w", rand(8, 8, 3, 3, seed=2) * 0.3), init("slope", slope)]
    model = make_model(nodes, [vinfo("x", ["N", *SHAPE[1:]])], [vinfo("y", None)], inits)
    _assert_matches_on_fast_kernels(model, rand(*SHAPE, seed=4))


@pytest.mark.parametrize("shape", [SHAPE, (2, 8, 36)], ids=["4d", "3d"])
def test_instance_normalization_matches_onnxruntime(shape):
    c = shape[1]
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("InstanceNormalization", ["r", "s", "b"], ["y"], epsilon=1e-3),
    ]
    inits = [init("s", rand(c, seed=5) + 1), init("b", rand(c, seed=6))]
    model = make_model(nodes, [vinfo("x", ["N", *shape[1:]])], [vinfo("y", None)], inits)
    _assert_matches_on_fast_kernels(model, rand(*shape, seed=7) * 3 + 1)


def test_group_norm_as_torch_exports_it_matches_onnxruntime():
    """Reshape to (N, groups, -1), InstanceNormalization with ones and zeros, Reshape back, then the affine."""
    nodes = [
        helper.make_node("Reshape", ["x", "grouped"], ["g"]),
        helper.make_node("InstanceNormalization", ["g", "ones", "zeros"], ["n"], epsilon=1e-5),
        helper.make_node("Reshape", ["n", "back"], ["u"]),
        helper.make_node("Mul", ["u", "gamma"], ["m"]),
        helper.make_node("Add", ["m", "beta"], ["y"]),
    ]
    inits = [
        init("grouped", np.array([0, 4, -1], np.int64)),
        init("back", np.array([0, *SHAPE[1:]], np.int64)),
        init("ones", np.ones(4, np.float32)),
        init("zeros", np.zeros(4, np.float32)),
        init("gamma", rand(8, 1, 1, seed=8)),
        init("beta", rand(8, 1, 1, seed=9)),
    ]
    model = make_model(nodes, [vinfo("x", ["N", *SHAPE[1:]])], [vinfo("y", None)], inits)
    _assert_matches_on_fast_kernels(model, rand(*SHAPE, seed=10) * 2)


@pytest.mark.parametrize(("shape", "axis"), [((2, 2, 1, 8), 1), ((2, 5, 6), 1), ((2, 3, 4, 5), 2), ((2, 5, 6), -1)])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_over_any_axis_matches_onnxruntime(shape, axis, op):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], axis=axis)]
    model = make_model(nodes, [vinfo("x", ["N", *shape[1:]])], [vinfo("y", None)])
    _assert_matches_on_fast_kernels(model, rand(*shape, seed=11) * 2)
