"""optimize_fp32 on the zoo models: everything fusable fuses, and the result computes the same."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx_ir as ir
import pytest

from int8kit import ops
from int8kit.ir.optimize import optimize_fp32
from int8kit.models import zoo

from .fusion_util import assert_equivalent, post_ops

ACTIVATIONS = {"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid"}


def _optimized(name, **kw):
    proto = zoo.build(name, **kw)
    return proto, optimize_fp32(ir.serde.deserialize_model(proto))


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenetv2_tiny", "hardswish_se_tiny", "concat_tiny"])
def test_tiny_models_fuse_and_compute_the_same(name):
    proto, model = _optimized(name)
    before = Counter(n.op_type for n in proto.graph.node)
    after = Counter((n.domain, n.op_type) for n in model.graph)
    assert model.metadata_props[ops.OPTIMIZED_KEY] == "fp32"
    assert after[(ops.DOMAIN, "Conv")] == before["Conv"]
    assert after[("", "Conv")] == after[("", "BatchNormalization")] == after[("", "Gemm")] == 0
    assert after[(ops.DOMAIN, "Dense")] == 1
    # every activation that directly follows a conv (through its BN) is gone
    fused = [n for n in model.graph if n.domain == ops.DOMAIN]
    assert all("int8kit.id" in n.metadata_props for n in fused)
    n_act = sum(len([p for p in post_ops(n) if p != "sum"]) for n in fused)
    left = sum(after[("", a)] for a in ACTIVATIONS)
    assert n_act + left == sum(before[a] for a in ACTIVATIONS)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_equivalent(proto, model, {"input": x}, rtol=1e-4, atol=1e-4)


def test_resnet_tiny_residuals_become_sum_relu():
    proto, model = _optimized("resnet_tiny")
    n_add = sum(n.op_type == "Add" for n in proto.graph.node)
    chains = Counter(tuple(post_ops(n)) for n in model.graph if n.domain == ops.DOMAIN)
    assert chains[("sum", "relu")] == n_add
    assert not any(n.op_type in ("Add", "Relu") for n in model.graph)


def test_hardswish_se_keeps_what_cannot_fuse():
    proto, model = _optimized("hardswish_se_tiny")
    remaining = [n.op_type for n in model.graph if not n.domain]
    # the SE scale Mul (broadcast), pools and the Softmax are not conv post-ops
    assert {"Mul", "GlobalAveragePool", "AveragePool", "Softmax"} <= set(remaining)
    dense = next(n for n in model.graph if n.op_type == "Dense")
    assert len(dense.inputs) == 3  # MatMul + Add became Dense with B


def test_mobilenet_v2_full():
    proto, model = _optimized("mobilenet_v2")
    before = Counter(n.op_type for n in proto.graph.node)
    chains = Counter(tuple(post_ops(n)) for n in model.graph if n.domain == ops.DOMAIN)
    assert chains[("clip:0.0:6.0",)] == before["Clip"]
    assert chains[("sum",)] == before["Add"]
    assert len(model.graph) == before["Conv"] + 3  # + GlobalAveragePool, Flatten, Dense
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert_equivalent(proto, model, {"input": x}, rtol=1e-3, atol=1e-3)


def test_resnet50_full():
    proto, model = _optimized("resnet50")
    before = Counter(n.op_type for n in proto.graph.node)
    chains = Counter(tuple(post_ops(n)) for n in model.graph if n.domain == ops.DOMAIN)
    assert chains[("sum", "relu")] == before["Add"] == 16
    assert chains[("relu",)] == before["Relu"] - before["Add"]
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    assert_equivalent(proto, model, {"input": x}, rtol=1e-3, atol=1e-3)
