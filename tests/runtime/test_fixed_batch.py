"""Models exported at a fixed batch (torch.onnx.export without dynamic axes writes 1): the engine runs any
batch through one program when the graph provably treats images independently, and otherwise runs a larger
batch as consecutive runs at the exported batch, so no image ever mixes with another. The reference is
onnxruntime running each image on its own at the exported batch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.errors import InputError
from int8kit.runtime.predictor import Predictor


def _model(tail: list[onnx.NodeProto], out_shape: list[int], batch: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        *tail,
    ]
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((10, 4 * 8 * 8)).astype(np.float32) * 0.1, "fc"),
        numpy_helper.from_array(np.array([batch, -1], np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([2 * batch, -1], np.int64), "mix_shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


GEMM = helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)
FLATTEN = _model([helper.make_node("Flatten", ["r"], ["f"]), GEMM], [1, 10])
# torch's x.view(x.size(0), -1) exported at batch 1: the target [1, -1] becomes [0, 256]
HARD_CODED_RESHAPE = _model([helper.make_node("Reshape", ["r", "flat_shape"], ["f"]), GEMM], [1, 10])


def _mixing(batch: int) -> onnx.ModelProto:
    """A Reshape that does not keep the batch first: at another batch its softmax would mix images."""
    tail = [
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Reshape", ["p", "mix_shape"], ["f"]),
        helper.make_node("Softmax", ["f"], ["y"], axis=-1),
    ]
    return _model(tail, [2 * batch, 2], batch)


MIXING_SOFTMAX = _mixing(1)


def _shuffle_model() -> onnx.ModelProto:
    """torch's static export of a ShuffleNet unit: chunk bounds computed from Shape, the shuffle's Reshapes
    hard-coding batch 1."""
    rng = np.random.default_rng(2)
    c = helper.make_tensor

    def ints(name, values):
        return c(name, TensorProto.INT64, [len(values)], values)

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["r0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["r0"], ["r"]),
        helper.make_node("Shape", ["r"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["channels"], axis=0),
        helper.make_node("Div", ["channels", "two"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "zero_axis"], ["half_1d"]),
        helper.make_node("Slice", ["r", "zeros_1d", "half_1d", "one_1d"], ["a"]),
        helper.make_node("Slice", ["r", "half_1d", "big_1d", "one_1d"], ["b0"]),
        helper.make_node("Sigmoid", ["b0"], ["b"]),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("Reshape", ["cat", "groups_shape"], ["g"]),
        helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "back_shape"], ["s"]),
        helper.make_node("GlobalAveragePool", ["s"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "fc"),
        c("one", TensorProto.INT64, [], [1]),
        c("two", TensorProto.INT64, [], [2]),
        ints("zero_axis", [0]),
        ints("zeros_1d", [0]),
        ints("one_1d", [1]),
        ints("big_1d", [1 << 30]),
        ints("groups_shape", [1, 2, 4, 8, 8]),
        ints("back_shape", [1, -1, 8, 8]),
    ]
    graph = helper.make_graph(
        nodes,
        "static_shuffle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _per_image_onnxruntime(model: onnx.ModelProto, x: np.ndarray, batch: int = 1) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("model", [FLATTEN, HARD_CODED_RESHAPE, _shuffle_model()], ids=["flatten", "view", "shuffle"])
def test_a_graph_exported_at_batch_1_whose_images_never_mix_runs_a_larger_batch_as_one_program(model):
    p = Predictor(model, num_threads=1)
    x = _images(4)
    np.testing.assert_allclose(p.run(x), _per_image_onnxruntime(model, x), rtol=1e-4, atol=1e-5)
    assert p.fixed_batch is None and p.cached_shapes == [((4, 3, 8, 8),)]


@pytest.mark.parametrize("batch", [1, 2])
def test_a_graph_whose_images_would_mix_runs_at_its_exported_batch(batch):
    model = _mixing(batch)
    p = Predictor(model, num_threads=1)
    x = _images(4)
    got = p.run(x)
    assert p.fixed_batch == batch and p.cached_shapes == [((batch, 3, 8, 8),)]
    np.testing.assert_allclose(got, _per_image_onnxruntime(model, x, batch), rtol=1e-4, atol=1e-5)
    if batch == 2:
        with pytest.raises(InputError, match="exported batch of 2"):
            p.run(_images(3))
