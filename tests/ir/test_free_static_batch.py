"""free_static_batch: a graph exported at a fixed batch gets a named batch dim only when its images never mix;
otherwise the graph is left exactly as it was (inputs, Reshape targets, shapes). References: the onnx file
format (declared dims) and the graphs' own constants."""

from __future__ import annotations

import onnx_ir as ir

from int8kit.ir.free_static_batch import FREED_BATCH, FreeStaticBatchPass
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.load import as_ir_model
from tests.runtime.test_fixed_batch import HARD_CODED_RESHAPE, MIXING_SOFTMAX, _shuffle_model


def _shaped(source) -> ir.Model:
    model = as_ir_model(source)
    InferShapesPass()(model)  # the pass runs after the intake's shape inference
    return model


def _reshape_targets(model: ir.Model) -> list[list[int]]:
    return [n.inputs[1].const_value.numpy().tolist() for n in model.graph if n.op_type == "Reshape"]


def test_graph_whose_images_never_mix_gets_a_named_batch_and_per_image_targets():
    for source in (HARD_CODED_RESHAPE, _shuffle_model()):
        model = _shaped(source)
        assert FreeStaticBatchPass()(model).modified
        assert model.graph.inputs[0].shape[0] == ir.SymbolicDim(FREED_BATCH)
        assert all(t[0] == 0 and -1 not in t for t in _reshape_targets(model))
        assert model.graph.outputs[0].shape[0] == ir.SymbolicDim(FREED_BATCH)


def test_graph_that_would_mix_images_is_left_exactly_as_it_was():
    model = _shaped(MIXING_SOFTMAX)
    shapes = {v.name: v.shape for n in model.graph for v in n.outputs}
    initializers = set(model.graph.initializers)
    assert not FreeStaticBatchPass()(model).modified
    assert list(model.graph.inputs[0].shape) == [1, 3, 8, 8]
    assert _reshape_targets(model) == [[2, -1]]
    assert {v.name: v.shape for n in model.graph for v in n.outputs} == shapes
    assert set(model.graph.initializers) == initializers


def test_a_batch_written_as_minus_one_is_free_already_and_left_alone():
    """paddle2onnx writes a free dim as -1 (PaddleOCR's classifier): not a fixed batch of -1."""

    source = _shuffle_model()
    source.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    model = _shaped(source)
    assert not FreeStaticBatchPass()(model).modified
    assert list(model.graph.inputs[0].shape)[0] == -1
