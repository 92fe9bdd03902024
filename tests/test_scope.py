"""Scope: ONNX op types (depthwise as a predicate), node names and ids; every rule must match a node."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit.errors import ConfigError
from int8kit.metadata import ID_KEY, SOURCE_OP_KEY
from int8kit.scope import Scope, ScopeNode

CONV = ScopeNode("Conv", "conv1", 0)
DW = ScopeNode("Conv", "dw", 1, depthwise=True)
GEMM = ScopeNode("Gemm", "fc", 2)
NODES = [CONV, DW, GEMM]


def test_empty_scope_takes_everything():
    assert all(Scope().contains(n) for n in NODES) and Scope().includes_all


def test_conv_covers_depthwise_and_the_predicate_splits_them():
    assert Scope(op_types=("Conv",)).contains(DW)
    assert [n.name for n in NODES if Scope(op_types=("Conv[depthwise]",)).contains(n)] == ["dw"]
    assert [n.name for n in NODES if Scope(op_types=("Conv[!depthwise]",)).contains(n)] == ["conv1"]
    assert [n.name for n in NODES if Scope(exclude_op_types=("Conv[depthwise]",)).contains(n)] == ["conv1", "fc"]


def test_alternatives_names_and_ids():
    assert [n.name for n in NODES if Scope(op_types=("Gemm|MatMul",)).contains(n)] == ["fc"]
    assert Scope(exclude_nodes=("fc",)).reason_out(GEMM) == "skipped by scope: node fc"
    assert Scope(exclude_ids=(1,)).reason_out(DW) == "skipped by scope: id 1"
    assert Scope(op_types=("Conv",)).reason_out(GEMM) == "Gemm not in the scope's op types (Conv)"


@pytest.mark.parametrize(
    ("scope", "named"),
    [
        (Scope(op_types=("Softmax",)), "op type 'Softmax'"),
        (Scope(exclude_op_types=("MatMul",)), "excluded op type 'MatMul'"),
        (Scope(exclude_nodes=("conv9",)), "node 'conv9'"),
        (Scope(exclude_ids=(42,)), "op id 42"),
    ],
)
def test_a_rule_that_matches_nothing_is_an_error_naming_it(scope, named):
    with pytest.raises(ConfigError, match=named):
        scope.check(NODES)
    Scope(op_types=("Conv", "Gemm"), exclude_nodes=("dw",), exclude_ids=(0,)).check(NODES)  # all match: fine


@pytest.mark.parametrize("rule", ["Gemm[depthwise]", "Conv[grouped]", "not a type", ""])
def test_malformed_rules_are_refused_at_construction(rule):
    with pytest.raises(ConfigError, match="scope"):
        Scope(op_types=(rule,))


def test_check_supported_names_the_unknown_types():
    with pytest.raises(ConfigError, match="Softmax"):
        Scope(op_types=("Conv|Softmax",)).check_supported(("Conv", "Gemm"))


def test_scope_node_of_an_ir_node_sees_the_onnx_type_and_depthwise():
    w = ir.Value(name="w", const_value=ir.tensor(np.zeros((6, 1, 3, 3), np.float32)))
    x = ir.Value(name="x")
    conv = ir.Node("int8kit", "Conv", [x, w], attributes=[ir.AttrInt64("group", 6)], name="dw")
    conv.metadata_props[ID_KEY] = "7"
    dense = ir.Node("int8kit", "Dense", [x, w], name="fc")
    dense.metadata_props[SOURCE_OP_KEY] = "MatMul"
    affine = ir.Node("int8kit", "Affine", [x, w, w], name="bn")
    assert ScopeNode.of(conv) == ScopeNode("Conv", "dw", 7, depthwise=True)
    assert ScopeNode.of(dense).op_type == "MatMul"
    assert ScopeNode.of(affine).op_type == "BatchNormalization"
