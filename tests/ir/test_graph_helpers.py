"""ir.graph.add_initializer keeps the array's shape: a scalar scale stays 0-D (numpy's ascontiguousarray
makes it 1-D, and onnx's reference evaluator then reads a 1-element scale as per-axis: the converter's
border Q/DQ of onnxruntime-quantized shape arithmetic (timm's TF-style padding) came out 2-D and failed to
concatenate at compile time)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit.ir.graph import add_initializer, taken_names


@pytest.mark.parametrize("array", [np.array(0.25, np.float32), np.array(3, np.uint8), np.zeros((2, 3), np.float32)])
def test_add_initializer_keeps_the_shape(array):
    graph = ir.Graph([], [], nodes=[], name="g")
    value = add_initializer(graph, "scale", array, taken_names(graph))
    assert value.const_value.numpy().shape == array.shape
    assert tuple(value.shape) == array.shape
    np.testing.assert_array_equal(value.const_value.numpy(), array)
