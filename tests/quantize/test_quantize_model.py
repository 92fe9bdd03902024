"""End to end: the QDQ model of a small conv net, checked against onnxruntime and numpy."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.errors import ConfigError, DataError, InputError
from int8kit.evaluate.metrics import row_cosines
from int8kit.quantize import QuantizeConfig, quantize_model, quantize_with_report
from int8kit.scope import Scope

from ._nets import SIZE, build_net, make_images

ORT = dict(backend="onnxruntime")


def _run(model: onnx.ModelProto, x: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    if outputs:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        for name in outputs:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(names, {"input": x}), strict=True))
    return [got[n] for n in (outputs or names[:1])]


def _inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


@pytest.mark.parametrize("method", ["minmax", "percentile", "kl", "mse"])
def test_qdq_model_runs_in_onnxruntime_close_to_fp32(net, images, method):
    qdq = quantize_model(net, images[:48], QuantizeConfig(method=method, num_samples=48, **ORT))
    onnx.checker.check_model(qdq)
    held_out = make_images(16, seed=7)
    (fp32,) = _run(net, held_out)
    (int8,) = _run(qdq, held_out)
    assert row_cosines(fp32, int8).min() >= 0.99
    assert (np.argmax(fp32, 1) == np.argmax(int8, 1)).mean() >= 0.8


def _folded_conv_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Conv weights with the following BatchNormalization folded in, computed here with numpy."""
    inits = _inits(model)
    consumers = {i: n for n in model.graph.node for i in n.input}
    out = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        bn = consumers[node.output[0]]
        gamma, _, _, var = (inits[n] for n in bn.input[1:])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        out[node.name] = inits[node.input[1]] * (gamma / np.sqrt(var + eps))[:, None, None, None]
    return out


def test_weights_are_int8_with_independent_per_channel_scales(net, images):
    qdq = quantize_model(net, images, QuantizeConfig(num_samples=16, **ORT))
    inits, producers = _inits(qdq), _producers(qdq)
    expected = _folded_conv_weights(net)
    fc_w = _inits(net)["fc.w"]
    expected["fc"] = fc_w
    quantized_nodes = [n for n in qdq.graph.node if n.op_type in ("Conv", "Gemm")]
    assert sorted(n.name for n in quantized_nodes) == sorted(expected)
    for node in quantized_nodes:
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear"
        assert [a.i for a in dq.attribute if a.name == "axis"] == [0]
        q, scale, zp = (inits[n] for n in dq.input)
        w = expected[node.name]
        assert q.dtype == np.int8 and zp.dtype == np.int8 and not zp.any()
        np.testing.assert_allclose(scale, np.abs(w.reshape(len(w), -1)).max(axis=1) / 127, rtol=1e-5)
        shape = (-1,) + (1,) * (w.ndim - 1)
        np.testing.assert_allclose(q * scale.reshape(shape), w, atol=float(scale.max()) * 0.51)
        if node.op_type == "Conv":
            assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32  # bias stays float
    assert not any(
        t.data_type == TensorProto.FLOAT and t.name.startswith("conv") and t.name.endswith(".w")
        for t in qdq.graph.initializer
    )


def test_relu_outputs_are_uint8_others_int8(net, images):
    qdq = quantize_model(net, images, QuantizeConfig(num_samples=16, **ORT))
    inits, producers = _inits(qdq), _producers(qdq)
    kinds = {}
    for node in qdq.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        zp = inits[node.input[2]]
        assert zp.shape == () and zp == 0
        src = producers.get(node.input[0])
        kinds[node.input[0]] = (src.op_type if src else "input", zp.dtype)
    # Every ReLU output feeding a quantized op is u8; the model input is s8; the Add's QDQ moved after
    # its ReLU; the conv output entering the residual Add gets none: the converter fuses that Add as the
    # conv's sum post-op, where a rounding would only add error.
    assert kinds["conv0.relu"] == ("Relu", np.uint8)
    assert kinds["conv1.relu"] == ("Relu", np.uint8)
    assert kinds["res.relu"] == ("Relu", np.uint8)
    assert kinds["input"] == ("input", np.int8)
    assert "conv2.bn" not in kinds
    assert "res" not in kinds
    # pooled / flattened ReLU data stays u8, and MaxPool shares its input's scale.
    assert kinds["pool"][1] == kinds["gap"][1] == kinds["flat"][1] == np.uint8
    scale = {n.input[0]: float(inits[n.input[1]]) for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert scale["pool"] == scale["res.relu"] and scale["flat"] == scale["gap"]


def test_minmax_scales_equal_observed_maxima(net, images):
    x = images[:24]
    result = quantize_with_report(net, x, QuantizeConfig(num_samples=100, batch_size=5, **ORT))  # all 24 samples
    names = ["conv0.relu", "res.relu"]
    acts = dict(zip(names, _run(net, x, names), strict=True))
    inits = _inits(result.to_proto())
    qnodes = [n for n in result.to_proto().graph.node if n.op_type == "QuantizeLinear"]
    scale = {n.input[0]: float(inits[n.input[1]]) for n in qnodes}
    assert scale["conv0.relu"] == pytest.approx(acts["conv0.relu"].max() / 255, rel=1e-5)
    assert scale["res.relu"] == pytest.approx(acts["res.relu"].max() / 255, rel=1e-5)
    assert scale["input"] == pytest.approx(np.abs(x).max() / 127, rel=1e-6)
    assert result.num_samples == 24


def test_sampling_is_seeded(net, images):
    def scales(seed):
        model = quantize_model(net, images, QuantizeConfig(num_samples=8, seed=seed, **ORT))
        return {t.name: numpy_helper.to_array(t).tobytes() for t in model.graph.initializer}

    a, b, c = scales(0), scales(0), scales(1)
    assert a == b
    assert a != c


def test_npy_file_is_read_memory_mapped_and_output_saved(net, images, tmp_path):
    data, out = tmp_path / "calib.npy", tmp_path / "q" / "model.onnx"
    np.save(data, images)
    from_file = quantize_model(net, data, QuantizeConfig(num_samples=10, **ORT), output=out)
    from_array = quantize_model(net, images, QuantizeConfig(num_samples=10, **ORT))
    assert from_file.graph == from_array.graph
    assert onnx.load(out).graph == from_file.graph


def test_exclusions_by_name_and_op_type(net, images):
    qdq = quantize_model(net, images, QuantizeConfig(num_samples=8, scope=Scope(exclude_nodes=("conv1",)), **ORT))
    conv1 = next(n for n in qdq.graph.node if n.name == "conv1")
    assert conv1.input[0] == "conv0.relu"  # reads the float tensor, not the DequantizeLinear output
    assert _inits(qdq)[conv1.input[1]].dtype == np.float32
    convs_only = quantize_model(net, images, QuantizeConfig(num_samples=8, scope=Scope(op_types=("Conv",)), **ORT))
    quantized = {n.input[0] for n in convs_only.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == {"input", "conv0.relu", "conv1.relu"}
    assert _inits(convs_only)["fc.w"].dtype == np.float32
    with pytest.raises(ConfigError, match="conv9"):
        quantize_model(net, images, QuantizeConfig(scope=Scope(exclude_nodes=("conv9",)), **ORT))
    with pytest.raises(ConfigError, match="Softmax"):
        quantize_model(net, images, QuantizeConfig(scope=Scope(op_types=("Conv", "Softmax")), **ORT))


def test_per_tensor_weights(net, images):
    qdq = quantize_model(net, images, QuantizeConfig(num_samples=8, per_channel=False, **ORT))
    inits = _inits(qdq)
    w = _folded_conv_weights(net)["conv0"]
    dq = next(n for n in qdq.graph.node if n.op_type == "DequantizeLinear" and inits[n.input[0]].ndim == 4)
    assert not [a for a in dq.attribute if a.name == "axis"]
    assert float(inits[dq.input[1]]) == pytest.approx(np.abs(w).max() / 127, rel=1e-5)
    (y,) = _run(qdq, images[:4])
    assert row_cosines(_run(net, images[:4])[0], y).min() >= 0.98


def test_fixed_batch_model(images):
    net1 = build_net(batch=1)
    qdq = quantize_model(net1, images, QuantizeConfig(num_samples=6, batch_size=4, **ORT))
    (y,) = _run(qdq, images[:1])
    assert row_cosines(_run(net1, images[:1])[0], y).min() >= 0.99


def test_concat_and_relu6_share_one_u8_scale(images):
    rng = np.random.default_rng(5)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32) * 3, "w2")
    w3 = numpy_helper.from_array(rng.standard_normal((2, 8, 1, 1)).astype(np.float32), "w3")
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6.0, np.float32), "hi")
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["a"], name="c1"),
        helper.make_node("Relu", ["a"], ["ra"], name="r1"),
        helper.make_node("Conv", ["input", "w2"], ["b"], name="c2"),
        helper.make_node("Clip", ["b", "lo", "hi"], ["rb"], name="relu6"),
        helper.make_node("Concat", ["ra", "rb"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["out"], name="c3"),
    ]
    graph = helper.make_graph(
        nodes,
        "cat",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [w1, w2, w3, lo, hi],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    result = quantize_with_report(model, images, QuantizeConfig(num_samples=16, **ORT))
    by_name = {t.name: t for t in result.tensors}
    assert {by_name[n].qparams for n in ("ra", "rb", "cat")} == {by_name["cat"].qparams}
    assert by_name["cat"].qparams.dtype == "uint8"
    ra, rb = _run(model, images[:16], ["ra", "rb"])
    assert by_name["cat"].qparams.scale == pytest.approx(max(ra.max(), rb.max()) / 255, rel=1e-5)
    (y,) = _run(result.to_proto(), images[:4])
    assert row_cosines(_run(model, images[:4])[0].reshape(4, -1), y.reshape(4, -1)).min() >= 0.99


def test_data_that_does_not_fit_the_input(net):
    small = np.zeros((4, 3, 8, 8), np.float32)
    with pytest.raises(InputError) as err:
        quantize_model(net, small, QuantizeConfig(**ORT))
    text = str(err.value)
    assert "'input'" in text and "(3, 8, 8)" in text and f"3, {SIZE}, {SIZE}" in text
    with pytest.raises(InputError, match="'input'"):
        quantize_model(net, np.zeros((4, 3, SIZE), np.float32), QuantizeConfig(**ORT))


def test_empty_calibration_set(net, tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 3, SIZE, SIZE), np.float32))
    with pytest.raises(DataError, match="empty.npy.*no samples"):
        quantize_model(net, path, QuantizeConfig(**ORT))
    with pytest.raises(DataError, match="not found"):
        quantize_model(net, tmp_path / "missing.npy", QuantizeConfig(**ORT))


def test_bad_config_values():
    with pytest.raises(ConfigError, match="method"):
        QuantizeConfig(method="histogram")
    with pytest.raises(ConfigError, match="num_samples"):
        QuantizeConfig(num_samples=0)


def test_int8kit_runtime_gives_the_same_ranges(net, images):
    pytest.importorskip("int8kit.runtime.predictor")
    ours = quantize_with_report(net, images, QuantizeConfig(num_samples=16, backend="int8kit"))
    ref = quantize_with_report(net, images, QuantizeConfig(num_samples=16, **ORT))
    for a, b in zip(ours.tensors, ref.tensors, strict=True):
        assert a.name == b.name
        assert (a.lo, a.hi) == pytest.approx((b.lo, b.hi), rel=1e-4, abs=1e-5)


def test_seed_binary_data_file(net, images, tmp_path):
    # Written by hand from the seed format: int64 N | N x float32[3, D, D] | N x int64 label.
    path = tmp_path / "calib.bin"
    n = 20
    with open(path, "wb") as f:
        f.write(np.int64(n).astype("<i8").tobytes())
        f.write(images[:n].astype("<f4").tobytes())
        f.write(np.arange(n, dtype="<i8").tobytes())
    from_file = quantize_model(net, path, QuantizeConfig(num_samples=12, seed=3, **ORT))
    from_array = quantize_model(net, images[:n], QuantizeConfig(num_samples=12, seed=3, **ORT))
    assert from_file.graph == from_array.graph


@pytest.mark.parametrize("method", ["kl", "mse", "percentile"])
def test_mobilenetv2_style_net_with_relu6_and_depthwise(method):
    # ReLU6 spikes at 6 and zero-padded depthwise borders make spiky histograms; a threshold search
    # that mishandles them clips hard and the logits drift.
    from int8kit.models import zoo

    model = zoo.build("mobilenetv2_tiny")
    x = np.random.default_rng(0).standard_normal((40, 3, 32, 32)).astype(np.float32)
    qdq = quantize_model(model, x[:32], QuantizeConfig(method=method, num_samples=32, **ORT))
    assert any(n.op_type == "Clip" for n in model.graph.node)
    assert row_cosines(_run(model, x[32:])[0], _run(qdq, x[32:])[0]).min() >= 0.995


def test_converter_runs_every_op_of_the_qdq_model_in_int8(net, images):
    # The QDQ layout is the contract with int8kit convert: every scale it needs is in a Q->DQ pair.
    pytest.importorskip("int8kit.convert.pipeline")
    from int8kit.convert.pipeline import convert
    from int8kit.runtime.predictor import Predictor

    result = convert(quantize_model(net, images[:32], QuantizeConfig(num_samples=32, **ORT)))
    # Only the global average is not INT8: the file gives it its own finer grid, so it reads the INT8 data
    # straight into a float mean (int8kit.Mean), which the Gemm quantizes again on the small pooled vector.
    assert set(result.summary.fp32_ops) <= {"Mean", "Flatten"}, result.summary.fp32_ops
    assert result.summary.int8_ops["Conv"] == 3 and result.summary.int8_ops["Dense"] == 1
    x = make_images(8, seed=11)
    assert row_cosines(_run(net, x)[0], Predictor(result.model).run(x)).min() >= 0.99


def test_onnxruntime_calibration_reads_conv_outputs_its_fusions_would_drop():
    """FastViT's re-parameterisable block (two depthwise conv branches summed, a lone BN beside a 1x1 conv):
    on timm's fastvit_t8 onnxruntime's full optimisation (its NCHWc layout fusions) dropped an exposed conv
    output and the session failed, so calibration runs the graph as written. That failure needs the whole
    model; here the ranges of such a block are checked against onnxruntime's values of the same tensors."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array((rng.standard_normal((32, 1, 7, 7)) * 0.2).astype(np.float32), "w7"),
        numpy_helper.from_array((rng.standard_normal((32, 1, 3, 3)) * 0.2).astype(np.float32), "w3"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b7"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b3"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, (1, 32, 1, 1)).astype(np.float32), "bn_scale"),
        numpy_helper.from_array(rng.standard_normal((1, 32, 1, 1)).astype(np.float32), "bn_shift"),
        numpy_helper.from_array((rng.standard_normal((32, 32, 1, 1)) * 0.3).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w7", "b7"], ["large"], group=32, pads=[3, 3, 3, 3], strides=[2, 2]),
        helper.make_node("Conv", ["input", "w3", "b3"], ["small"], group=32, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Add", ["large", "small"], ["sum"]),
        helper.make_node("Mul", ["sum", "bn_scale"], ["scaled"]),  # the identity branch's lone BN
        helper.make_node("Add", ["scaled", "bn_shift"], ["identity"]),
        helper.make_node("Conv", ["sum", "w1"], ["mixed"]),
        helper.make_node("Add", ["identity", "mixed"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "branches", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 32, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((6, 32, 16, 16)).astype(np.float32)
    result = quantize_with_report(model, x, QuantizeConfig(num_samples=6, **ORT))
    large = next(t for t in result.tensors if t.name == "large")
    want = _run(model, x, ["large"])[0]
    assert large.lo == pytest.approx(float(want.min()), rel=1e-5)
    assert large.hi == pytest.approx(float(want.max()), rel=1e-5)


def test_an_opset_13_hard_swish_net_gives_a_qdq_file_onnxruntime_loads():
    """torch writes hard-swish at opset 13 as x * HardSigmoid(x); the intake makes it one HardSwish (an
    opset-14 op), so the QDQ file must declare opset 14 or onnxruntime refuses it. Compared with the FP32
    model run by onnxruntime, so a file that loads but computes something else fails too."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("HardSigmoid", ["c"], ["g"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["c", "g"], ["h"]),
        helper.make_node("GlobalAveragePool", ["h"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hs13",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8, 1, 1])],
        [numpy_helper.from_array(w, "w")],
    )
    net = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    net.ir_version = 7
    images = rng.standard_normal((16, 3, 8, 8)).astype(np.float32) * 2
    qdq = quantize_model(net, images, QuantizeConfig(num_samples=16, **ORT))
    onnx.checker.check_model(qdq, full_check=True)
    (want,) = _run(net, images)
    (got,) = _run(qdq, images)
    assert row_cosines(got.reshape(16, -1), want.reshape(16, -1)).min() > 0.99


def test_padding_computed_in_float_from_a_shape_is_not_calibrated(images):
    """timm's pad_same (pnasnet, TF-ported nets) sums its 'same' padding in float from the tensor's shape:
    Shape -> Gather -> Cast -> Sub -> Clip -> Div -> Unsqueeze -> Concat -> Cast -> Pad. That Concat is
    shape arithmetic, not image data: it gets no Q/DQ (calibrating it found 0..0 and refused the model),
    while the convolutions around it are quantized and the QDQ model still computes the FP32 padding."""
    rng = np.random.default_rng(4)
    f = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    i = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    inits = [
        numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w0"),
        numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.3).astype(np.float32), "w1"),
        i("h_axis", [2]),
        f("target", SIZE + 2.0),
        f("zero", 0.0),
        f("two", 2.0),
        i("axis0", [0]),
        f("z1", [0.0]),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Shape", ["r0"], ["shape"]),
        helper.make_node("Gather", ["shape", "h_axis"], ["h"]),
        helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["target", "hf"], ["total"]),
        helper.make_node("Clip", ["total", "zero"], ["clipped"]),
        helper.make_node("Div", ["clipped", "two"], ["half"]),  # [1.0]: one row and column each side
        helper.make_node("Concat", ["z1", "z1", "half", "half", "z1", "z1", "half", "half"], ["padsf"], axis=0),
        helper.make_node("Cast", ["padsf"], ["pads"], to=TensorProto.INT64),
        helper.make_node("Pad", ["r0", "pads"], ["padded"]),
        helper.make_node("Conv", ["padded", "w1"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "pad_same", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    qdq = quantize_model(model, images, QuantizeConfig(num_samples=16))
    producers = _producers(qdq)
    quantized = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized & {"padsf", "half", "clipped", "total", "hf"}
    assert {"input", "r0"} <= quantized or {"input", "c0"} <= quantized
    assert producers["pads"].op_type == "Cast"
    x = images[:4]
    fp32, got = _run(model, x)[0], _run(qdq, x)[0]
    assert got.shape == fp32.shape == (4, 8, SIZE, SIZE)
    assert row_cosines(got.reshape(4, -1), fp32.reshape(4, -1)).min() > 0.99
