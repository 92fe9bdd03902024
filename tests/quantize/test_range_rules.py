"""The calibration rules that decide a tensor's grid beyond its observer: one-sided data under KL, ranges an op
bounds (ReLU6, sigmoid), and u8 with a zero point for one-sided signed ranges (hard-swish outputs).

References: numpy fake-quantization, onnxruntime running the FP32 and the QDQ models, hand-computed scales.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.quantize import scheme
from int8kit.quantize.api import QuantizeConfig, quantize_with_report
from int8kit.quantize.calibrate import calibrate
from int8kit.quantize.observers import KLObserver, MSEObserver, make_observer
from int8kit.quantize.plan import plan_quantization
from int8kit.quantize.samples import CalibrationSamples
from int8kit.quantize.scheme import activation_qparams, bounded_tensors

ort = pytest.importorskip("onnxruntime")


def _fake_quant(x: np.ndarray, lo: float, hi: float, unsigned: bool) -> np.ndarray:
    """numpy reference of the symmetric grid the scheme builds from (lo, hi)."""
    amax = max(abs(lo), abs(hi))
    qmin, qmax = (0, 255) if unsigned else (-127, 127)
    scale = amax / qmax
    return np.clip(np.rint(x / scale), qmin, qmax) * scale


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - got) ** 2)))


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_kl_keeps_one_sided_data_far_from_zero(sign):
    """A squeeze-excite gate's input, all in [-2.2, -0.8]: cuts below the data's smallest magnitude fold it all
    into one bin (KL 0), which used to clip the whole tensor to a single value."""
    x = sign * np.random.default_rng(0).uniform(0.8, 2.2, 4000).astype(np.float32)
    obs = KLObserver()
    for chunk in np.array_split(x, 10):
        obs.update(chunk)
    lo, hi = obs.range()
    assert hi - lo > 0.5 * (x.max() - x.min())  # a range, not one value
    assert _sqnr(x, _fake_quant(x, lo, hi, unsigned=sign > 0)) > 30


def test_kl_still_clips_the_tail_of_data_from_zero():
    """The start of the cuts moves only for data away from 0: a Laplace tail is still clipped."""
    x = np.random.default_rng(1).laplace(0, 1, 200_000).astype(np.float32)
    obs = KLObserver()
    obs.update(x)
    lo, hi = obs.range()
    assert hi < 0.8 * np.abs(x).max()


def _bounded_net(act: str) -> onnx.ModelProto:
    """Conv -> act -> MaxPool -> Conv, with a large weight so many values saturate at the activation's bound."""
    rng = np.random.default_rng(2)
    w0 = (rng.standard_normal((4, 3, 3, 3)) * 2.0).astype(np.float32)
    w1 = rng.standard_normal((4, 4, 1, 1)).astype(np.float32)
    act_node = {
        "relu6": helper.make_node("Clip", ["c0", "lo", "hi"], ["a"], name="act"),
        "sigmoid": helper.make_node("Sigmoid", ["c0"], ["a"], name="act"),
        "relu": helper.make_node("Relu", ["c0"], ["a"], name="act"),
    }[act]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        act_node,
        helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w1"], ["y"], name="conv1"),
    ]
    inits = [
        numpy_helper.from_array(w0, "w0"),
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    graph = helper.make_graph(
        nodes,
        "bounded",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort_tensors(model: onnx.ModelProto, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()  # the graph as written, as calibration runs it (no fused kernels)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, {"x": x}), strict=True))


def test_bounded_tensors_follow_the_op_table():
    assert bounded_tensors(_bounded_net("relu6").graph) == {"a", "p"}  # Clip(0, 6) and its MaxPool
    assert bounded_tensors(_bounded_net("sigmoid").graph) == {"a", "p"}
    assert bounded_tensors(_bounded_net("relu").graph) == set()  # no upper bound: its tail may be clipped
    no_max = _bounded_net("relu6")
    del no_max.graph.node[1].input[2]  # Clip(x, 0): bounded below only
    assert bounded_tensors(no_max.graph) == set()


@pytest.mark.parametrize("act", ["relu6", "sigmoid"])
@pytest.mark.parametrize("method", ["percentile", "kl", "mse"])
def test_clipping_methods_keep_the_full_range_of_a_bounded_activation(act, method):
    """The values saturated at 6 (or near 1) are a large share of the data: the calibrated range is the observed
    one (onnxruntime's min/max), while the unbounded conv output before it is still clipped."""
    model = _bounded_net(act)
    x = np.random.default_rng(3).standard_normal((64, 3, 8, 8)).astype(np.float32)
    fp32 = ir.serde.deserialize_model(model)
    ranges = calibrate(
        fp32,
        ["c0", "a", "p"],
        CalibrationSamples(x, 64, 0),
        method=method,
        percentile=99.0,
        backend="onnxruntime",
        bounded=bounded_tensors(fp32.graph),
    )
    ref = _ort_tensors(model, x, ["c0", "a", "p"])
    for name in ("a", "p"):
        np.testing.assert_allclose(ranges[name], (ref[name].min(), ref[name].max()), rtol=1e-6)
    assert ranges["c0"][1] < ref["c0"].max()  # the method still clips where the op does not bound


def test_zero_point_only_for_one_sided_ranges_that_allow_it():
    """Hand-computed: hard-swish's [-0.375, 14] on u8 gets scale 14.375 / 255 and zero point round(0.375 / scale)."""
    qp = activation_qparams(-0.375, 14.0, unsigned=False, zero_point_ok=True)
    scale = np.float32(14.375) / np.float32(255)
    assert (qp.dtype, qp.zero_point) == ("uint8", round(0.375 / float(scale)))
    assert qp.scale == pytest.approx(float(scale), rel=1e-7)
    assert activation_qparams(-0.375, 14.0, unsigned=False) == activation_qparams(-14.0, 0.375, unsigned=False)
    assert activation_qparams(-0.375, 14.0, unsigned=False).zero_point == 0  # not allowed: symmetric s8
    near_symmetric = activation_qparams(-5.0, 6.0, unsigned=False, zero_point_ok=True)
    assert (near_symmetric.dtype, near_symmetric.zero_point) == ("int8", 0)  # s8 is within 1.5x: no zero point
    assert activation_qparams(0.0, 6.0, unsigned=True, zero_point_ok=True).zero_point == 0


def test_mse_searches_the_grid_a_zero_point_gives():
    """With a zero point the one-sided range has the u8 step, so the MSE-optimal clip is wider than for s8."""
    x = np.random.default_rng(4).exponential(1.0, 100_000).astype(np.float32) - 0.3
    symmetric, asymmetric = MSEObserver(), make_observer("mse", zero_point_ok=True)
    symmetric.update(x)
    asymmetric.update(x)
    assert asymmetric.range()[1] > symmetric.range()[1]


def _hardswish_net(second: str) -> onnx.ModelProto:
    """Conv -> HardSwish -> (Conv | Mul by a gate) -> Conv: the hard-swish output is one-sided."""
    rng = np.random.default_rng(5)
    w0 = (rng.standard_normal((8, 3, 3, 3)) * 0.8).astype(np.float32)
    w1 = (rng.standard_normal((8, 8, 3, 3)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c0"], ["h"], name="hswish"),
    ]
    if second == "conv":
        nodes.append(helper.make_node("Conv", ["h", "w1"], ["y"], name="conv1", pads=[1, 1, 1, 1]))
    else:
        nodes += [
            helper.make_node("GlobalAveragePool", ["h"], ["g"], name="gap"),
            helper.make_node("Sigmoid", ["g"], ["s"], name="gate"),
            helper.make_node("Mul", ["h", "s"], ["m"], name="excite"),
            helper.make_node("Conv", ["m", "w1"], ["y"], name="conv1", pads=[1, 1, 1, 1]),
        ]
    graph = helper.make_graph(
        nodes,
        "hswish",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(w1, "w1")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_plan_allows_zero_points_only_between_kernels_that_execute_them():
    assert "h" in plan_quantization(_hardswish_net("conv")).zero_point_ok  # Conv+HardSwish writes, Conv reads
    se = plan_quantization(_hardswish_net("se"))
    assert "h" not in se.zero_point_ok  # the squeeze-excite Mul reads it: oneDNN's binary has no zero point
    assert "m" not in se.zero_point_ok  # the Mul writes it


def test_hardswish_output_gets_a_zero_point_that_onnxruntime_and_int8kit_agree_on(monkeypatch):
    """End to end: the QDQ model with the zero point, in onnxruntime, is closer to FP32 than the symmetric one,
    and int8kit's INT8 model computes what the QDQ model says."""
    from int8kit.convert.pipeline import convert
    from int8kit.runtime.predictor import Predictor

    model = _hardswish_net("conv")
    rng = np.random.default_rng(6)
    calib = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    x = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    result = quantize_with_report(model, calib, QuantizeConfig(num_samples=32, backend="onnxruntime"))
    hswish = {t.name: t.qparams for t in result.tensors}["h"]
    assert hswish.dtype == "uint8" and hswish.zero_point > 0
    qdq = result.to_proto()

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    fp32 = run(model)
    monkeypatch.setattr(scheme, "ASYMMETRIC_GAIN", np.inf)  # the same model with the symmetric s8 grid on "h"
    symmetric = quantize_with_report(model, calib, QuantizeConfig(num_samples=32, backend="onnxruntime")).to_proto()
    assert _sqnr(fp32, run(qdq)) > _sqnr(fp32, run(symmetric)) + 2.0
    got = Predictor(convert(qdq).model, num_threads=1).run(x)
    assert _sqnr(run(qdq), got) > 35


def test_kl_never_clips_more_error_than_the_grid_rounds():
    """Heavy-tailed data (a late squeeze-excite output: most values small, a few up to 20x the 99.9th
    percentile): numpy's exact clipping error at KL's threshold stays within the rounding noise of its grid."""
    rng = np.random.default_rng(7)
    x = (rng.exponential(0.3, 400_000) ** 2).astype(np.float32)
    obs = KLObserver()
    for chunk in np.array_split(x, 8):
        obs.update(chunk)
    _, t = obs.range()
    x64 = x.astype(np.float64)
    clip_err = float(np.sum(np.maximum(x64 - t, 0.0) ** 2))
    round_err = float(np.sum(x64 <= t)) * (t / 255) ** 2 / 12
    assert clip_err <= 1.2 * round_err  # 1.2: the histogram resolves t to one bin
    assert t < x.max()  # still a clip: the floor is not the maximum


def _gate_net() -> onnx.ModelProto:
    """Relu -> squeeze-excite (GAP, Conv, Sigmoid) -> Mul, next to a Mul of the Relu by a signed conv output."""
    rng = np.random.default_rng(8)
    inits = {
        "w0": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "ws": rng.standard_normal((4, 4, 1, 1)).astype(np.float32),
        "wc": rng.standard_normal((4, 4, 1, 1)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Conv", ["g", "ws"], ["gs"], name="squeeze"),
        helper.make_node("Sigmoid", ["gs"], ["gate"], name="gate"),
        helper.make_node("Mul", ["r", "gate"], ["excited"], name="excite"),
        helper.make_node("Conv", ["r", "wc"], ["signed"], name="conv1"),
        helper.make_node("Mul", ["r", "signed"], ["product"], name="product"),
        helper.make_node("Add", ["excited", "r"], ["y"], name="sum"),
    ]
    graph = helper.make_graph(
        nodes,
        "gate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_products_and_sums_of_non_negative_tensors_are_non_negative():
    """A gate in [0, 1] times a ReLU output (and that plus the ReLU) is >= 0, so its grid is u8; a ReLU output
    times a signed conv output is not. onnxruntime's values agree with the rule on random data."""
    from int8kit.quantize.scheme import nonnegative_tensors

    model = _gate_net()
    nonneg = nonnegative_tensors(model.graph)
    assert {"excited", "y"} <= nonneg and "product" not in nonneg and "signed" not in nonneg
    x = np.random.default_rng(9).standard_normal((16, 3, 8, 8)).astype(np.float32)
    values = _ort_tensors(model, x, ["excited", "y", "product"])
    assert values["excited"].min() >= 0 and values["y"].min() >= 0 and values["product"].min() < 0
