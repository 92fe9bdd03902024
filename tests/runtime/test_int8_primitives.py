"""Hand-built INT8 graphs in the int8kit domain against a numpy model of oneDNN v3 quantization.

Reference (see int8kit/ops.py): q = saturate(round_half_even(real / scale)); acc = sum(qx * qw) in
int32; y = post_ops(x_scale * w_scale[oc] * acc + bias [+ sum_scale * q_sum]); quantized output is
saturate(round_half_even(y / y_scale)). oneDNN computes the float part in fp32 (and may multiply by
1 / y_scale), so a quantized value may be off by one; at least 99 % must match exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper

from int8kit import ops

from ._util import init, make_model, vinfo

RANGES = {np.uint8: (0, 255), np.int8: (-128, 127)}
ELEM = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}
ONNX_TYPE = {np.uint8: ops.UINT8, np.int8: ops.INT8}


def quantize(real: np.ndarray, scale: float, dtype) -> np.ndarray:
    lo, hi = RANGES[dtype]
    return np.clip(np.rint(real.astype(np.float64) / scale), lo, hi).astype(dtype)  # rint: half to even


def conv_acc(q: np.ndarray, w: np.ndarray, stride: int, pad: int, group: int) -> np.ndarray:
    """int32 accumulators of a grouped 2-D convolution, computed exactly in int64."""
    q = np.pad(q.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oc, icg, kh, kw = w.shape
    win = sliding_window_view(q, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # N C OH OW kh kw
    n, c, oh, ow = win.shape[:4]
    win = win.reshape(n, group, icg, oh, ow, kh, kw)
    wg = w.astype(np.int64).reshape(group, oc // group, icg, kh, kw)
    acc = np.einsum("ngchwyx,gocyx->ngohw", win, wg).reshape(n, oc, oh, ow)
    assert np.abs(acc).max() < 2**31
    return acc


def assert_quantized_close(got: np.ndarray, want: np.ndarray, min_exact: float = 0.99) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1, f"max quantized difference {diff.max()} (> 1)"
    exact = float((diff == 0).mean())
    assert exact >= min_exact, f"only {exact:.2%} of quantized values match exactly"


def int8_model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    model = make_model(nodes, inputs, outputs, initializers, extra_opsets=[(ops.DOMAIN, ops.DOMAIN_VERSION)])
    helper.set_model_props(model, {ops.OPTIMIZED_KEY: "int8"})
    return model


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int = 1) -> dict[str, np.ndarray]:
    from int8kit.runtime.predictor import Predictor

    return Predictor(model, num_threads=threads).run_dict(feeds)


def zp(name: str, dtype) -> onnx.TensorProto:
    return init(name, np.array(0, dtype))


def scale_for(real: np.ndarray, dtype, percentile: float = 99.5) -> float:
    """A scale that saturates the top 0.5 % (so saturation is exercised too)."""
    return float(np.percentile(np.abs(real), percentile)) / RANGES[dtype][1]


# ---- Conv ------------------------------------------------------------------------------------------------
CONV_CASES = {
    "3x3_u8_relu": dict(c=16, oc=32, k=3, stride=1, pad=1, group=1, x_type=np.uint8, post="relu"),
    "3x3_s8_in": dict(c=16, oc=24, k=3, stride=1, pad=1, group=1, x_type=np.int8, post="relu"),
    "strided": dict(c=8, oc=16, k=3, stride=2, pad=1, group=1, x_type=np.uint8, post="relu"),
    "depthwise": dict(c=16, oc=16, k=3, stride=1, pad=1, group=16, x_type=np.uint8, post="relu"),
    "1x1_s8_out": dict(c=32, oc=16, k=1, stride=1, pad=0, group=1, x_type=np.uint8, post=None),
}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_int8_conv(case, batch):
    cfg = CONV_CASES[case]
    rng = np.random.default_rng(7)
    c, oc, k, group = cfg["c"], cfg["oc"], cfg["k"], cfg["group"]
    x_type, y_type = cfg["x_type"], np.uint8 if cfg["post"] == "relu" else np.int8
    x = rng.standard_normal((batch, c, 10, 9)).astype(np.float32)
    if x_type is np.uint8:
        x = np.abs(x)
    x_scale = scale_for(x, x_type)
    w = rng.integers(-127, 128, (oc, c // group, k, k)).astype(np.int8)
    w_scales = rng.uniform(0.5, 2.0, oc).astype(np.float32) * 1e-2
    bias = rng.standard_normal(oc).astype(np.float32)

    qx = quantize(x, x_scale, x_type)
    acc = conv_acc(qx, w, cfg["stride"], cfg["pad"], group)
    real = x_scale * w_scales.astype(np.float64)[None, :, None, None] * acc + bias[None, :, None, None]
    if cfg["post"] == "relu":
        real = np.maximum(real, 0)
    y_scale = scale_for(real, y_type)
    want = quantize(real, y_scale, y_type)

    conv = helper.make_node(
        "Conv",
        ["qx", "w", "b"],
        ["qy"],
        domain=ops.DOMAIN,
        strides=[cfg["stride"]] * 2,
        pads=[cfg["pad"]] * 4,
        group=group,
        **({"post_ops": [cfg["post"]]} if cfg["post"] else {}),
        x_scale=x_scale,
        w_scales=w_scales.tolist(),
        y_scale=y_scale,
        y_type=ONNX_TYPE[y_type],
    )
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]),
        conv,
        helper.make_node("DequantizeLinear", ["qy", "ys", "yz"], ["y"]),
    ]
    inits = [
        init("xs", np.float32(x_scale)),
        zp("xz", x_type),
        init("w", w),
        init("b", bias),
        init("ys", np.float32(y_scale)),
        zp("yz", y_type),
    ]
    outputs = [vinfo("y", None), vinfo("qy", None, ELEM[y_type]), vinfo("qx", None, ELEM[x_type])]
    model = int8_model(nodes, [vinfo("x", list(x.shape))], outputs, inits)
    out = run(model, {"x": x})
    assert_quantized_close(out["qx"], qx, min_exact=0.999)
    assert_quantized_close(out["qy"], want)
    np.testing.assert_allclose(out["y"], out["qy"].astype(np.float32) * np.float32(y_scale), rtol=1e-6)


def test_quantize_linear_matches_numpy():
    """The QuantizeLinear border alone: round half to even and saturation, exactly as ONNX specifies."""
    x = np.array([[-1.5, -0.5, 0.5, 1.5, 2.5, 300.0, -300.0, 126.5, 127.5]], np.float32)
    for dtype in (np.uint8, np.int8):
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])]
        model = int8_model(
            nodes,
            [vinfo("x", [1, 9])],
            [vinfo("q", None, ELEM[dtype])],
            [init("s", np.float32(1.0)), zp("z", dtype)],
        )
        np.testing.assert_array_equal(run(model, {"x": x})["q"], quantize(x, 1.0, dtype), err_msg=str(dtype))


# ---- Conv with an int8 residual (sum post-op) ------------------------------------------------------
@pytest.mark.parametrize("residual_type", [np.int8, np.uint8])
@pytest.mark.parametrize("in_place", [True, False], ids=["in_place", "copied"])
@pytest.mark.parametrize("float_out", [False, True], ids=["u8_out", "float_out"])
def test_int8_conv_sum_residual(residual_type, in_place, float_out):
    """relu(conv + sum_scale * q_residual), the ResNet block tail; copied when the residual is read later. A
    float output (NFNet's downsampling conv) reads the residual dequantized: oneDNN's sum needs the dst's size."""
    rng = np.random.default_rng(11)
    n, c, h, wd = 2, 16, 8, 8
    x = np.abs(rng.standard_normal((n, c, h, wd))).astype(np.float32)
    r = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    if residual_type is np.uint8:
        r = np.abs(r)
    x_scale, r_scale = scale_for(x, np.uint8), scale_for(r, residual_type)
    w = rng.integers(-127, 128, (c, c, 3, 3)).astype(np.int8)
    w_scales = rng.uniform(0.5, 2.0, c).astype(np.float32) * 1e-3
    bias = (rng.standard_normal(c) * 0.1).astype(np.float32)

    qx, qr = quantize(x, x_scale, np.uint8), quantize(r, r_scale, residual_type)
    acc = conv_acc(qx, w, 1, 1, 1)
    real = x_scale * w_scales.astype(np.float64)[None, :, None, None] * acc + bias[None, :, None, None]
    with_sum = np.maximum(real + r_scale * qr.astype(np.float64), 0)
    y_scale = scale_for(with_sum, np.uint8)
    want = quantize(with_sum, y_scale, np.uint8)
    # The residual must matter, or a dropped sum post-op would pass.
    assert (np.abs(quantize(np.maximum(real, 0), y_scale, np.uint8).astype(int) - want) > 1).mean() > 0.5

    conv = helper.make_node(
        "Conv",
        ["qx", "w", "b", "qr"],
        ["qy"],
        domain=ops.DOMAIN,
        pads=[1, 1, 1, 1],
        post_ops=["sum", "relu"],
        x_scale=x_scale,
        w_scales=w_scales.tolist(),
        **({"y_type": ops.FLOAT} if float_out else {"y_scale": y_scale, "y_type": ops.UINT8}),
        sum_scale=r_scale,
    )
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]),
        helper.make_node("QuantizeLinear", ["r", "rs", "rz"], ["qr"]),
        conv,
    ]
    outputs = [vinfo("qy", None, TensorProto.FLOAT if float_out else TensorProto.UINT8)]
    if not in_place:
        outputs.append(vinfo("qr", None, ELEM[residual_type]))  # read after the conv: must survive it
    inits = [
        init("xs", np.float32(x_scale)),
        zp("xz", np.uint8),
        init("rs", np.float32(r_scale)),
        zp("rz", residual_type),
        init("w", w),
        init("b", bias),
    ]
    shape = [n, c, h, wd]
    model = int8_model(nodes, [vinfo("x", shape), vinfo("r", shape)], outputs, inits)
    out = run(model, {"x": x, "r": r})
    if float_out:
        np.testing.assert_allclose(out["qy"], with_sum, rtol=1e-5, atol=1e-5)
    else:
        assert_quantized_close(out["qy"], want)
    if not in_place:
        np.testing.assert_array_equal(out["qr"], qr)


# ---- Dense -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("y_type", [np.float32, np.int8, np.uint8])
def test_int8_dense(y_type):
    rng = np.random.default_rng(5)
    n, k, m = 6, 64, 10
    x = np.abs(rng.standard_normal((n, k))).astype(np.float32)
    x_scale = scale_for(x, np.uint8)
    w = rng.integers(-127, 128, (m, k)).astype(np.int8)
    w_scales = rng.uniform(0.5, 2.0, m).astype(np.float32) * 1e-2
    bias = rng.standard_normal(m).astype(np.float32)
    qx = quantize(x, x_scale, np.uint8)
    acc = qx.astype(np.int64) @ w.astype(np.int64).T
    real = x_scale * w_scales.astype(np.float64)[None, :] * acc + bias[None, :]
    post = []
    if y_type is np.uint8:
        real, post = np.maximum(real, 0), ["relu"]

    attrs = dict(x_scale=x_scale, w_scales=w_scales.tolist(), **({"post_ops": post} if post else {}))
    if y_type is np.float32:
        attrs["y_type"] = ops.FLOAT
        out_elem = TensorProto.FLOAT
    else:
        y_scale = scale_for(real, y_type)
        attrs.update(y_type=ONNX_TYPE[y_type], y_scale=y_scale)
        out_elem = ELEM[y_type]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]),
        helper.make_node("Dense", ["qx", "w", "b"], ["y"], domain=ops.DOMAIN, **attrs),
    ]
    inits = [init("xs", np.float32(x_scale)), zp("xz", np.uint8), init("w", w), init("b", bias)]
    model = int8_model(nodes, [vinfo("x", [n, k])], [vinfo("y", None, out_elem)], inits)
    got = run(model, {"x": x})["y"]
    if y_type is np.float32:
        assert got.dtype == np.float32
        err = np.abs(got - real).max() / np.abs(real).max()
        assert err < 1e-5, f"relative error {err:.3g}"
    else:
        assert_quantized_close(got, quantize(real, y_scale, y_type))


def test_int8_conv_threads_agree():
    """Two threads give the same int8 result as one (a deterministic integer kernel)."""
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((4, 16, 12, 12))).astype(np.float32)
    x_scale = scale_for(x, np.uint8)
    w = rng.integers(-127, 128, (32, 16, 3, 3)).astype(np.int8)
    conv = helper.make_node(
        "Conv",
        ["qx", "w"],
        ["qy"],
        domain=ops.DOMAIN,
        pads=[1, 1, 1, 1],
        post_ops=["relu"],
        x_scale=x_scale,
        w_scales=[1e-2] * 32,
        y_scale=0.05,
        y_type=ops.UINT8,
    )
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]), conv]
    inits = [init("xs", np.float32(x_scale)), zp("xz", np.uint8), init("w", w)]
    model = int8_model(nodes, [vinfo("x", list(x.shape))], [vinfo("qy", None, TensorProto.UINT8)], inits)
    one, two = run(model, {"x": x}, threads=1)["qy"], run(model, {"x": x}, threads=2)["qy"]
    assert one.max() > 0
    np.testing.assert_array_equal(one, two)


# ---- Affine ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_type", [np.uint8, np.int8])
def test_int8_affine_with_a_float_output_matches_numpy_on_an_optimised_kernel(x_type):
    """A standalone BN on INT8 data whose result stays float (RepVGG's identity branch, summed in float with
    the conv branches): oneDNN 3.2 has only ref:any for int8 -> f32 binary kernels."""
    rng = np.random.default_rng(11)
    shape = [2, 24, 5, 7]
    x = np.abs(rng.standard_normal(shape)).astype(np.float32) if x_type == np.uint8 else rng.standard_normal(shape)
    x = x.astype(np.float32)
    x_scale = scale_for(x, x_type)
    scale = rng.uniform(0.5, 2.0, shape[1]).astype(np.float32)
    shift = rng.standard_normal(shape[1]).astype(np.float32)
    q = quantize(x, x_scale, x_type)
    want = x_scale * q.astype(np.float64) * scale[None, :, None, None] + shift[None, :, None, None]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["qx"]),
        helper.make_node(
            "Affine", ["qx", "scale", "shift"], ["y"], domain=ops.DOMAIN, x_scale=x_scale, y_type=ops.FLOAT
        ),
    ]
    inits = [init("xs", np.float32(x_scale)), zp("xz", x_type), init("scale", scale), init("shift", shift)]
    model = int8_model(nodes, [vinfo("x", shape)], [vinfo("y", None)], inits)
    from int8kit.runtime.predictor import Predictor

    predictor = Predictor(model, num_threads=1)
    np.testing.assert_allclose(predictor.run_dict({"x": x})["y"], want, rtol=1e-5, atol=1e-5)
    program = predictor.program({"x": tuple(shape)})
    assert not [impl for impl in program.impls if impl.startswith("ref")], program.impls


@pytest.mark.parametrize("shape", [[4, 64, 1, 1], [2, 24, 5, 7]])
def test_affine_rounding_onto_a_grid_matches_numpy_on_an_optimised_kernel(shape):
    """A float BN whose output the QDQ file rounds (an fq post-op; PP-HGNetV2's head): oneDNN 3.2's binary
    kernels with a round post-op are ref:any, so the rounding runs as steps after the kernel."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, shape[1]).astype(np.float32)
    shift = rng.standard_normal(shape[1]).astype(np.float32)
    grid = 0.02
    v = x.astype(np.float64) * scale[None, :, None, None] + shift[None, :, None, None]
    want = np.clip(np.rint(np.maximum(v, 0) / grid), 0, 255) * grid
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),  # a computed input
        helper.make_node("Identity", ["r"], ["r2"]),
        helper.make_node(
            "Affine", ["x", "scale", "shift"], ["y"], domain=ops.DOMAIN, post_ops=["relu", f"fq:{grid}:0.0:0.0:255.0"]
        ),
    ]
    inits = [init("scale", scale), init("shift", shift)]
    model = int8_model(nodes[2:], [vinfo("x", shape)], [vinfo("y", None)], inits)
    from int8kit.runtime.predictor import Predictor

    predictor = Predictor(model, num_threads=1)
    got = predictor.run_dict({"x": x})["y"]
    diff = np.abs(got - want)
    assert diff.max() <= grid * 1.0001 and (diff > 1e-6).mean() <= 0.01  # a float tie may round either way
    program = predictor.program({"x": tuple(shape)})
    assert not [impl for impl in program.impls if impl.startswith("ref")], program.impls


# ---- Binary ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [None, (-1.5, 1.25)])
def test_int8_add_with_a_float_output_matches_numpy_on_an_optimised_kernel(clip):
    """A residual Add of two int8 tensors whose sum leaves INT8 (a transformer's last block before its
    LayerNorm): oneDNN 3.2 has only ref:any for int8 + int8 -> f32, so the engine must get there otherwise."""
    rng = np.random.default_rng(7)
    shape = [2, 9, 16]
    a, r = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    a_scale, r_scale = scale_for(a, np.int8), scale_for(r, np.int8)
    qa, qr = quantize(a, a_scale, np.int8), quantize(r, r_scale, np.int8)
    want = a_scale * qa.astype(np.float64) + r_scale * qr.astype(np.float64)
    attrs = dict(alg="add", a_scale=a_scale, b_scale=r_scale, y_type=ops.FLOAT)
    if clip is not None:
        attrs["clip"] = list(clip)
        want = np.clip(want, *clip)
    nodes = [
        helper.make_node("QuantizeLinear", ["a", "as", "az"], ["qa"]),
        helper.make_node("QuantizeLinear", ["r", "rs", "rz"], ["qr"]),
        helper.make_node("Binary", ["qa", "qr"], ["y"], domain=ops.DOMAIN, **attrs),
    ]
    inits = [init("as", np.float32(a_scale)), zp("az", np.int8), init("rs", np.float32(r_scale)), zp("rz", np.int8)]
    model = int8_model(nodes, [vinfo("a", shape), vinfo("r", shape)], [vinfo("y", None)], inits)
    from int8kit.runtime.predictor import Predictor

    predictor = Predictor(model, num_threads=1)
    got = predictor.run_dict({"a": a, "r": r})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    program = predictor.program({"a": tuple(shape), "r": tuple(shape)})
    assert not [impl for impl in program.impls if impl.startswith("ref")], program.impls
