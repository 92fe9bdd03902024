"""A tensor that moving ops (Reshape, Transpose, Slice, Flatten) made out of a quantized tensor gets that
tensor's scale from int8kit's quantizer, so its INT8 values pass through as they are: no requantization and
no second rounding (ShuffleNet's shuffled, sliced halves used to get scales of their own)."""

from __future__ import annotations

import numpy as np
import onnx
from convert._util import classifier  # tests/convert helpers (tests/ is on sys.path)
from onnx import helper, numpy_helper

from int8kit.convert.pipeline import convert
from int8kit.quantize import QuantizeConfig, quantize_model

SIZE = 16
C = 16


def _shuffle_slice_net() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def ints(name, values):
        return numpy_helper.from_array(np.array(values, np.int64), name)

    inits = [
        init("w0", C, 3, 3, 3),
        init("w1", C // 2, C // 2, 1, 1),
        init("w2", C // 2, C // 2, 1, 1),
        init("fc", 10, C),
        ints("split", [0, 2, C // 2, SIZE, SIZE]),
        ints("merge", [0, C, SIZE, SIZE]),
        ints("zero", [0]),
        ints("half", [C // 2]),
        ints("all", [C]),
        ints("one", [1]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Reshape", ["r0", "split"], ["s5"], name="split_channels"),
        helper.make_node("Transpose", ["s5"], ["t5"], perm=[0, 2, 1, 3, 4], name="shuffle"),
        helper.make_node("Reshape", ["t5", "merge"], ["shuffled"], name="merge_channels"),
        helper.make_node("Slice", ["shuffled", "zero", "half", "one"], ["left"], name="left_half"),
        helper.make_node("Slice", ["shuffled", "half", "all", "one"], ["right"], name="right_half"),
        helper.make_node("Conv", ["right", "w1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Concat", ["left", "r1"], ["cat"], axis=1, name="concat"),
        helper.make_node("GlobalAveragePool", ["cat"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "shuffle_slice", input_dims=("N", 3, SIZE, SIZE))


def _scales(qdq: onnx.ModelProto) -> dict[str, float]:
    inits = {t.name: numpy_helper.to_array(t) for t in qdq.graph.initializer}
    return {n.input[0]: float(inits[n.input[1]]) for n in qdq.graph.node if n.op_type == "QuantizeLinear"}


def test_sliced_halves_of_a_shuffle_keep_the_scale_they_were_made_from():
    calib = np.random.default_rng(1).standard_normal((8, 3, SIZE, SIZE)).astype(np.float32)
    qdq = quantize_model(_shuffle_slice_net(), calib, QuantizeConfig(num_samples=8, backend="onnxruntime"))
    scales = _scales(qdq)
    assert {"r0", "right", "left"} <= set(scales), sorted(scales)  # r0 is quantized as conv0 writes it
    assert scales["right"] == scales["r0"] and scales["left"] == scales["r0"]
    int8 = convert(qdq).model
    assert not [n.name for n in int8.graph if n.op_type == "Requantize"]


def test_split_halves_read_beside_a_shape_keep_the_scale_of_the_tensor_they_split():
    """ResNeSt's split attention: the conv output is read by Split and by Shape (for the view sizes); the
    halves are summed. The conv output is quantized once and both halves keep its scale."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array((rng.standard_normal((C, 3, 3, 3)) * 0.3).astype(np.float32), "w0"),
        numpy_helper.from_array(np.array([C // 2, C // 2], np.int64), "halves"),
        numpy_helper.from_array((rng.standard_normal((10, C // 2)) * 0.3).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Shape", ["r0"], ["shape"], name="shape"),
        helper.make_node("Split", ["r0", "halves"], ["a", "b"], axis=1, name="split"),
        helper.make_node("Add", ["a", "b"], ["s"], name="sum"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    model = classifier(nodes, inits, "split_attention", input_dims=("N", 3, SIZE, SIZE))
    calib = np.random.default_rng(1).standard_normal((8, 3, SIZE, SIZE)).astype(np.float32)
    scales = _scales(quantize_model(model, calib, QuantizeConfig(num_samples=8, backend="onnxruntime")))
    assert "r0" in scales and all(scales[h] == scales["r0"] for h in ("a", "b") if h in scales), scales


def _tf_same_pad_net() -> onnx.ModelProto:
    """timm's tf_* models: conv -> SiLU -> Pad whose amounts are computed from the tensor's shape (TF 'SAME')
    -> depthwise conv without pads."""
    rng = np.random.default_rng(0)

    def ints(name, values):
        return numpy_helper.from_array(np.array(values, np.int64), name)

    inits = [
        numpy_helper.from_array((rng.standard_normal((C, 3, 3, 3)) * 0.3).astype(np.float32), "w0"),
        numpy_helper.from_array((rng.standard_normal((C, 1, 3, 3)) * 0.5).astype(np.float32), "wd"),
        numpy_helper.from_array((rng.standard_normal((10, C)) * 0.3).astype(np.float32), "fc"),
        ints("two", [2]),
        ints("four", [4]),
        ints("zeros", [0, 0]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Sigmoid", ["c0"], ["sig"], name="sigmoid"),
        helper.make_node("Mul", ["c0", "sig"], ["act"], name="silu"),
        helper.make_node("Shape", ["act"], ["shape"], name="shape"),
        helper.make_node("Slice", ["shape", "two", "four"], ["hw"], name="hw"),
        helper.make_node("Div", ["hw", "hw"], ["ones"], name="ones"),  # [1, 1], known only at run time
        helper.make_node("Concat", ["zeros", "ones", "zeros", "ones"], ["pads"], axis=0, name="pads"),
        helper.make_node("Pad", ["act", "pads"], ["padded"], name="same_pad"),
        helper.make_node("Conv", ["padded", "wd"], ["d"], group=C, name="dwconv"),
        helper.make_node("GlobalAveragePool", ["d"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head"),
    ]
    return classifier(nodes, inits, "tf_same_pad", input_dims=("N", 3, SIZE, SIZE))


def test_a_zero_pad_with_computed_amounts_keeps_its_input_scale_and_runs_int8():
    """Before, the Pad's float input had no Q/DQ: the converted model padded in FP32 between the two convs
    (tf_efficientnet_b0 INT8 spent 91 of 131 ms in such Pads)."""
    from convert._util import assert_agrees, run_int8kit, run_ort

    calib = np.random.default_rng(1).standard_normal((8, 3, SIZE, SIZE)).astype(np.float32)
    qdq = quantize_model(_tf_same_pad_net(), calib, QuantizeConfig(num_samples=8, backend="onnxruntime"))
    scales = _scales(qdq)
    assert "act" in scales and scales["act"] == scales["padded"], scales
    int8 = convert(qdq).model
    pad = next(n for n in int8.graph if n.op_type == "Pad")
    assert pad.inputs[0].dtype in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8), pad.inputs[0].dtype
    x = np.random.default_rng(2).standard_normal((4, 3, SIZE, SIZE)).astype(np.float32)
    assert_agrees(run_int8kit(int8, x), run_ort(qdq, x))
