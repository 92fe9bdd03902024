"""AssignNodeIdsPass: ids follow topological order, survive save/load, existing ids never move."""

from __future__ import annotations

import onnx
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.errors import ModelError
from int8kit.ir.load import load_model
from int8kit.ir.node_ids import ID_KEY, AssignNodeIdsPass, copy_node_id, node_id, nodes_by_id

from ._util import make_model, vinfo


def _chain(n=4):
    nodes = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"], name=f"relu{i}") for i in range(n)]
    return make_model(nodes, [vinfo("v0", [2])], [vinfo(f"v{n}", [2])])


def test_ids_in_topological_order_and_roundtrip(tmp_path):
    model = ir.serde.deserialize_model(_chain())
    assert all(node_id(n) is None for n in model.graph)
    assert AssignNodeIdsPass()(model).modified
    assert [node_id(n) for n in model.graph] == [0, 1, 2, 3]
    path = tmp_path / "ids.onnx"
    ir.save(model, path)
    proto = onnx.load(path)
    assert [dict((p.key, p.value) for p in n.metadata_props)[ID_KEY] for n in proto.graph.node] == list("0123")
    reloaded = load_model(path)
    assert [node_id(n) for n in reloaded.graph] == [0, 1, 2, 3]
    assert not AssignNodeIdsPass()(reloaded).modified


def test_existing_ids_kept_new_nodes_numbered_after_max():
    model = ir.serde.deserialize_model(_chain())
    model.graph[1].metadata_props[ID_KEY] = "7"
    model.graph[3].metadata_props[ID_KEY] = "2"
    AssignNodeIdsPass()(model)
    assert [node_id(n) for n in model.graph] == [8, 7, 9, 2]
    assert nodes_by_id(model)[7] is model.graph[1]


def test_copy_node_id_and_bad_id():
    model = ir.serde.deserialize_model(_chain())
    AssignNodeIdsPass()(model)
    fused = ir.node("Relu", [model.graph.inputs[0]])
    copy_node_id(model.graph[2], fused)
    assert node_id(fused) == 2
    model.graph[0].metadata_props[ID_KEY] = "conv"
    with pytest.raises(ModelError, match="relu0"):
        node_id(model.graph[0])
