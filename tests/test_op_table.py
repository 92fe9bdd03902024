"""The op table against independent references: the ONNX spec's defaults, ONNX's reference evaluator for
the value and sign claims, and what the runtime actually lowers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from int8kit import op_table

X = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)

# A small graph per op type: (node, extra initializers); input "x" is X.
CASES = {
    "MaxPool": (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2]), []),
    "GlobalMaxPool": (helper.make_node("GlobalMaxPool", ["x"], ["y"]), []),
    "AveragePool": (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2]), []),
    "GlobalAveragePool": (helper.make_node("GlobalAveragePool", ["x"], ["y"]), []),
    "ReduceMean": (helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3]), []),
    "Reshape": (helper.make_node("Reshape", ["x", "s"], ["y"]), [("s", np.array([2, 2, 2, 36], np.int64))]),
    "Flatten": (helper.make_node("Flatten", ["x"], ["y"]), []),
    "Squeeze": (helper.make_node("Squeeze", ["x1", "a"], ["y"]), [("a", np.array([0], np.int64))]),
    "Unsqueeze": (helper.make_node("Unsqueeze", ["x", "a"], ["y"]), [("a", np.array([0], np.int64))]),
    "Transpose": (helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1]), []),
    "DepthToSpace": (helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2), []),
    "SpaceToDepth": (helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2), []),
    "Split": (helper.make_node("Split", ["x"], ["y", "z"], axis=1, num_outputs=2), []),
    "Slice": (
        helper.make_node("Slice", ["x", "st", "en"], ["y"]),
        [("st", np.array([1], np.int64)), ("en", np.array([3], np.int64))],
    ),
    "Pad": (helper.make_node("Pad", ["x", "p"], ["y"]), [("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))]),
    "Identity": (helper.make_node("Identity", ["x"], ["y"]), []),
    "Concat": (helper.make_node("Concat", ["x", "x"], ["y"], axis=1), []),
    "Relu": (helper.make_node("Relu", ["x"], ["y"]), []),
    "Sigmoid": (helper.make_node("Sigmoid", ["x"], ["y"]), []),
    "HardSigmoid": (helper.make_node("HardSigmoid", ["x"], ["y"]), []),
    "Softmax": (helper.make_node("Softmax", ["x"], ["y"]), []),
    "Softplus": (helper.make_node("Softplus", ["x"], ["y"]), []),
    "Clip": (helper.make_node("Clip", ["x", "lo", "hi"], ["y"]), [("lo", np.float32(0)), ("hi", np.float32(6))]),
    "Resize": (
        helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest"),
        [("sc", np.array([1, 1, 2, 2], np.float32))],
    ),
}


def _run(op_type: str, x: np.ndarray) -> np.ndarray:
    node, inits = CASES[op_type]
    feeds = {"x": x, "x1": x[:1]}
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "x1")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ReferenceEvaluator(model).run(["y"], feeds)[0]


@pytest.mark.parametrize("op_type", op_table.op_types(grid="same"))
def test_same_grid_ops_output_only_input_values(op_type):
    y = _run(op_type, X)
    allowed = set(X.reshape(-1).tolist()) | ({0.0} if op_type == "Pad" else set())
    assert set(y.reshape(-1).tolist()) <= allowed


@pytest.mark.parametrize("op_type", op_table.op_types(grid="average"))
def test_averaging_ops_stay_within_the_input_range(op_type):
    y = _run(op_type, X)
    assert X.min() <= y.min() and y.max() <= X.max()


@pytest.mark.parametrize("op_type", op_table.op_types(sign="nonnegative"))
def test_nonnegative_ops_never_output_a_negative(op_type):
    assert _run(op_type, X).min() >= 0


@pytest.mark.parametrize("op_type", [t for t in op_table.op_types(sign="preserving") if t in CASES])
def test_sign_preserving_ops_keep_nonnegative_data_nonnegative(op_type):
    assert _run(op_type, np.abs(X)).min() >= 0
    if "Pool" not in op_type and op_type not in ("Resize", "Upsample"):
        assert _run(op_type, X).min() < 0  # and do not make signed data non-negative


def test_activation_defaults_are_the_onnx_spec_defaults():
    for op_type, kind, attrs in (
        ("LeakyRelu", "leakyrelu", ["alpha"]),
        ("Elu", "elu", ["alpha"]),
        ("HardSigmoid", "hardsigmoid", ["alpha", "beta"]),
    ):
        schema = onnx.defs.get_schema(op_type)
        spec_defaults = tuple(helper.get_attribute_value(schema.attributes[a].default_value) for a in attrs)
        assert op_table.activation_defaults(kind) == pytest.approx(spec_defaults)


def test_every_post_op_kind_has_a_kernel_and_every_activation_a_post_op():
    from int8kit import ops
    from int8kit.runtime import dnnl

    for op_type in op_table.op_types(role="activation"):
        assert op_table.OPS[op_type].post_op in op_table.POST_OP_KERNELS
    for kind, (alg, _) in op_table.POST_OP_KERNELS.items():
        assert kind in ops.POST_OPS and isinstance(getattr(dnnl, alg), int)


def test_every_int8_data_movement_op_is_lowered_by_the_runtime():
    from int8kit.runtime.lowering import supported_ops

    missing = set(op_table.op_types(role="data_movement", int8=True)) - supported_ops()
    assert not missing
