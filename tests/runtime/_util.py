"""Helpers for the runtime tests: single-op models and the onnxruntime reference."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def vinfo(name: str, shape, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def make_model(nodes, inputs, outputs, initializers=(), opset: int = OPSET, extra_opsets=()) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def ort_session(model: onnx.ModelProto, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of `model` as computed by onnxruntime."""
    return ort_session(model).run(None, feeds)[0]


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: the measure every runtime test bounds."""
    assert got.shape == want.shape, f"shape {got.shape} != reference {want.shape}"
    scale = float(np.abs(want).max())
    return float(np.abs(got.astype(np.float64) - want).max()) / (scale if scale > 0 else 1.0)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-4) -> None:
    err = rel_err(got, want)
    assert err <= rtol, f"relative error {err:.3g} > {rtol:g}"
