"""The zoo itself: torchvision's architectures (parameter counts), exported with the ops torch writes for them,
a free batch, and onnxruntime agreeing with torch."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import onnx
import pytest
import torch

from examples.zoo import export as zoo_export
from int8kit.errors import ConfigError

from ._zoo import NAMES, SIZE, images, onnx_model, relative_error, run_ort, torch_model

# torchvision's published `num_params` (weights meta) for each architecture; GoogLeNet without aux heads.
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548,
    "mnasnet1_0": 4_383_312,
    "regnet_y_400mf": 4_344_144,
    "densenet121": 7_978_856,
    "googlenet": 6_624_904,
    "shufflenet_v2_x1_0": 2_278_604,
    "squeezenet1_1": 1_235_496,
}

# Op counts read off the architectures by hand (blocks, residual adds, activations), not off an export.
# torch folds every BatchNorm that follows a conv into it; DenseNet's pre-activation BNs stay.
EXPECTED_OPS = {
    "resnet18": {"Conv": 20, "Add": 8, "Relu": 17, "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    "resnet50": {"Conv": 53, "Add": 16, "Relu": 49, "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    "resnext50_32x4d": {"Conv": 53, "Add": 16, "Relu": 49, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    # ReLU6 is Clip(0, 6): stem, 2 per block (1 in the first), last conv
    "mobilenet_v2": {"Conv": 52, "Clip": 35, "Add": 10, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    # squeeze-excite: GlobalAveragePool -> 1x1 convs -> HardSigmoid -> Mul, 8 of 15 blocks
    "mobilenet_v3_large": {
        "Conv": 62,
        "HardSigmoid": 8,
        "HardSwish": 21,
        "Mul": 8,
        "Add": 10,
        "GlobalAveragePool": 9,
        "Gemm": 2,
    },
    "mobilenet_v3_small": {
        "Conv": 52,
        "HardSigmoid": 9,
        "HardSwish": 19,
        "Mul": 9,
        "Add": 6,
        "GlobalAveragePool": 10,
        "Gemm": 2,
    },
    # SiLU is Sigmoid * Mul: 49 SiLU (stem, expand, depthwise, SE, head) + 16 SE gates
    "efficientnet_b0": {"Conv": 81, "Sigmoid": 65, "Mul": 65, "Add": 9, "GlobalAveragePool": 17, "Gemm": 1},
    "mnasnet1_0": {"Conv": 52, "Relu": 35, "Add": 10, "ReduceMean": 1, "GlobalAveragePool": 0, "Gemm": 1},
    "regnet_y_400mf": {"Conv": 85, "Sigmoid": 16, "Mul": 16, "Add": 16, "GlobalAveragePool": 17, "Gemm": 1},
    # every dense layer concatenates all earlier features: 58 layers + 4 block outputs
    "densenet121": {"Conv": 120, "Concat": 62, "BatchNormalization": 62, "AveragePool": 3, "Relu": 121, "Gemm": 1},
    "googlenet": {"Conv": 57, "Concat": 9, "MaxPool": 13, "Relu": 57, "GlobalAveragePool": 1, "Gemm": 1},
    # channel shuffle: Reshape -> Transpose -> Reshape per block; chunk(2) as two Slices in 13 stride-1 blocks
    "shufflenet_v2_x1_0": {"Conv": 56, "Transpose": 16, "Reshape": 32, "Slice": 26, "ReduceMean": 1, "Gemm": 1},
    "squeezenet1_1": {"Conv": 26, "Concat": 8, "MaxPool": 3, "Relu": 26, "Gemm": 0, "Flatten": 1},
}
GROUPED = {  # group -> number of grouped convs with it (depthwise convs aside)
    "resnext50_32x4d": {32: 16},
    "regnet_y_400mf": {6: 1, 13: 3, 26: 6, 55: 6},  # stage width / group width 8
}
SHAPE_SUBGRAPH = {"Shape", "Gather", "Cast", "Unsqueeze", "Concat"}


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def test_registry_is_the_issue_list():
    assert set(NAMES) == set(TORCHVISION_PARAMS) == set(EXPECTED_OPS)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_torchvisions(name):
    assert sum(p.numel() for p in torch_model(name).parameters()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "squeezenet1_1"])  # SqueezeNet has no BatchNorm
def test_batchnorm_statistics_are_not_the_identity(name):
    """Folding must matter: every BN shifts and scales its channels by different, non-trivial amounts."""
    norms = [m for m in torch_model(name).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms
    for bn in norms:
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias.detach() - bn.running_mean * scale
        assert float(scale.std()) > 0.05 and float(shift.abs().max()) > 0.01
        assert float(bn.running_var.std() / bn.running_var.mean()) > 0.05


@pytest.mark.parametrize("name", NAMES)
def test_exported_interface(name):
    model = onnx_model(name)
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}.get("") == 17
    (inp,) = model.graph.input
    (out,) = model.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert (inp.name, in_dims) == ("input", ["N", 3, SIZE, SIZE])
    assert (out.name, out_dims) == ("logits", ["N", 1000])


@pytest.mark.parametrize("name", NAMES)
def test_carries_the_ops_torch_writes(name):
    model = onnx_model(name)
    ops = _ops(model)
    expected = {"BatchNormalization": 0, **EXPECTED_OPS[name]}
    assert {op: ops.get(op, 0) for op in expected} == expected
    weights = {t.name: t.dims for t in model.graph.initializer}
    grouped = Counter(  # grouped but not depthwise: more than one input channel per group
        _attr(n, "group", 1)
        for n in model.graph.node
        if n.op_type == "Conv" and _attr(n, "group", 1) > 1 and weights[n.input[1]][1] > 1
    )
    assert dict(grouped) == GROUPED.get(name, {})


def test_shufflenet_shuffles_through_shape_arithmetic():
    model = onnx_model("shufflenet_v2_x1_0")
    assert set(_ops(model)) >= SHAPE_SUBGRAPH
    perms = {tuple(_attr(n, "perm")) for n in model.graph.node if n.op_type == "Transpose"}
    assert perms == {(0, 2, 1, 3, 4)}
    # the Reshape targets are computed from the input's Shape, not constants (the batch is free)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert {producers.get(n.input[1]) for n in model.graph.node if n.op_type == "Reshape"} == {"Concat"}


@pytest.mark.parametrize("name", ["mnasnet1_0", "shufflenet_v2_x1_0"])
def test_mean_head_is_reduce_mean_over_hw(name):
    (node,) = [n for n in onnx_model(name).graph.node if n.op_type == "ReduceMean"]
    assert list(_attr(node, "axes")) == [2, 3] and _attr(node, "keepdims") == 0


@pytest.mark.parametrize("name", ["googlenet", "squeezenet1_1"])
def test_pools_round_up(name):
    pools = [n for n in onnx_model(name).graph.node if n.op_type == "MaxPool"]
    assert pools and all(_attr(n, "ceil_mode") == 1 for n in pools)


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime_matches_torch_at_a_free_batch(name):
    x = images(3, seed=1)
    y3 = run_ort(name, x)
    y1 = run_ort(name, x[:1])
    assert y3.shape == (3, 1000) and y1.shape == (1, 1000)
    with torch.no_grad():
        reference = torch_model(name)(torch.from_numpy(x)).numpy()
    assert relative_error(y3, reference) <= 1e-4
    assert relative_error(y1, reference[:1]) <= 1e-4
    # random weights still give input-dependent, O(1)-scaled logits (no collapse, no blow-up)
    assert 0.05 < np.abs(reference).max() < 100
    assert relative_error(reference[1], reference[0]) > 0.01


def test_export_is_cached_by_name_size_and_definitions(tmp_path, monkeypatch):
    monkeypatch.setenv(zoo_export.CACHE_ENV, str(tmp_path))
    first = zoo_export.export("squeezenet1_1", 32)
    assert first.parent == tmp_path and first.exists()
    stamp = first.stat().st_mtime_ns
    assert zoo_export.export("squeezenet1_1", 32) == first and first.stat().st_mtime_ns == stamp
    other_size = zoo_export.export("squeezenet1_1", 48)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    before = _ort_logits(first, x)

    monkeypatch.setattr(zoo_export, "definition_hash", lambda *_: "edited")  # as if architectures.py changed
    second = zoo_export.export("squeezenet1_1", 32)
    assert second != first and second.exists()
    assert not first.exists() and other_size.exists()  # the stale file of that name and size is gone
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files left
    # the same seeded weights, so the same logits
    np.testing.assert_allclose(_ort_logits(second, x), before, rtol=1e-5, atol=1e-6)


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_unknown_model_is_a_clear_error(capsys):
    with pytest.raises(ConfigError, match="unknown zoo model 'resnet19'.*resnet18"):
        zoo_export.export("resnet19")
    assert zoo_export.main(["resnet19"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: unknown zoo model 'resnet19'; known: {', '.join([*zoo_export.MODELS, *zoo_export.TRANSFORMERS])}"
    ]
