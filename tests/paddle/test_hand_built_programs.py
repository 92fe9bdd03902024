"""Hand-built Paddle programs: op semantics against numpy, fake-quant formulas, the layouts, clear errors."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from paddle_fixtures import program, tensor_bytes

from int8kit.errors import ModelError, UnsupportedOpError
from int8kit.paddle import is_paddle_model, load_paddle_model

RNG = np.random.default_rng(7)


def _run(model: ir.Model, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = ir.serde.serialize_model(model).SerializeToString()
    return ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _save(directory, ops, variables, params: dict[str, np.ndarray], combined: bool = True):
    """Write `__model__` plus `__params__` (sorted by name) or one file per parameter."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__model__").write_bytes(program(ops, variables))
    if combined:
        (directory / "__params__").write_bytes(b"".join(tensor_bytes(params[n]) for n in sorted(params)))
    else:
        for name, array in params.items():
            (directory / name).write_bytes(tensor_bytes(array))
    return directory


def _io(x: str, y: str) -> list:
    return [("feed", {"X": ["feed"]}, {"Out": [x]}, {"col": 0})], [("fetch", {"X": [y]}, {"Out": ["fetch"]}, {})]


def _conv_np(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """Direct NCHW convolution, stride 1."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = x.shape
    oc, _, kh, kw = w.shape
    out = np.zeros((n, oc, h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i : i + kh, j : j + kw], w)
    return out


def _classifier(tmp_path, combined: bool):
    """conv -> batch_norm -> relu -> global avg pool -> flatten -> matmul_v2 + bias -> softmax."""
    w = RNG.normal(size=(4, 2, 3, 3)).astype(np.float32)
    bn = [RNG.uniform(0.5, 2, 4), RNG.normal(size=4), RNG.normal(size=4), RNG.uniform(0.5, 2, 4)]
    fc_w, fc_b = RNG.normal(size=(4, 3)).astype(np.float32), RNG.normal(size=3).astype(np.float32)
    params = {"w": w, "g": bn[0], "b": bn[1], "m": bn[2], "v": bn[3], "fc_w": fc_w, "fc_b": fc_b}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    feed, fetch = _io("x", "prob")
    ops = (
        feed
        + [
            (
                "conv2d",
                {"Input": ["x"], "Filter": ["w"]},
                {"Output": ["c"]},
                {"strides": [1, 1], "paddings": [1, 1], "dilations": [1, 1], "groups": 1, "data_format": "NCHW"},
            ),
            (
                "batch_norm",
                {"X": ["c"], "Scale": ["g"], "Bias": ["b"], "Mean": ["m"], "Variance": ["v"]},
                {"Y": ["bn"]},
                {"epsilon": 1e-5},
            ),
            ("relu", {"X": ["bn"]}, {"Out": ["r"]}, {}),
            ("pool2d", {"X": ["r"]}, {"Out": ["p"]}, {"pooling_type": "avg", "global_pooling": True, "ksize": [1, 1]}),
            ("flatten_contiguous_range", {"X": ["p"]}, {"Out": ["f"]}, {"start_axis": 1, "stop_axis": -1}),
            ("matmul_v2", {"X": ["f"], "Y": ["fc_w"]}, {"Out": ["mm"]}, {}),
            ("elementwise_add", {"X": ["mm"], "Y": ["fc_b"]}, {"Out": ["logits"]}, {"axis": 1}),
            ("softmax", {"X": ["logits"]}, {"Out": ["prob"]}, {"axis": -1}),
        ]
        + fetch
    )
    shapes = {
        "x": [-1, 2, 5, 5],
        "c": [-1, 4, 5, 5],
        "bn": [-1, 4, 5, 5],
        "r": [-1, 4, 5, 5],
        "p": [-1, 4, 1, 1],
        "f": [-1, 4],
        "mm": [-1, 3],
        "logits": [-1, 3],
        "prob": [-1, 3],
    }
    variables = {k: (v, False) for k, v in shapes.items()} | {k: (list(a.shape), True) for k, a in params.items()}
    directory = _save(tmp_path / ("combined" if combined else "separate"), ops, variables, params, combined)

    def reference(x):
        c = _conv_np(x.astype(np.float64), w, 1)
        s = params["g"] / np.sqrt(params["v"] + 1e-5)
        bn_out = (c - params["m"][:, None, None]) * s[:, None, None] + params["b"][:, None, None]
        logits = np.maximum(bn_out, 0).mean(axis=(2, 3)) @ fc_w + fc_b
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return directory, reference


@pytest.mark.parametrize("combined", [True, False])
def test_fp32_classifier_matches_numpy(tmp_path, combined):
    directory, reference = _classifier(tmp_path, combined)
    assert is_paddle_model(directory)
    x = RNG.normal(size=(3, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(load_paddle_model(directory), x), reference(x), rtol=1e-5, atol=1e-6)


def _frozen_conv(tmp_path, act_scale_in_dequant: float | None = None):
    """fake_quantize_range_abs_max -> conv2d (integer weights) -> fake_channel_wise_dequantize_max_abs."""
    s = 1.5
    q_w = RNG.integers(-127, 128, size=(3, 2, 1, 1)).astype(np.float32)
    w_scale = np.array([0.4, 0.9, 1.7], np.float32)
    params = {
        "x@scale": np.array([s], np.float32),
        "w": q_w,
        "w@channel_scale": w_scale,
        "deq@act_scale": np.array([act_scale_in_dequant or s], np.float32),
    }
    feed, fetch = _io("x", "y")
    ops = (
        feed
        + [
            (
                "fake_quantize_range_abs_max",
                {"X": ["x"], "InScale": ["x@scale"]},
                {"Out": ["xq"], "OutScale": ["x@scale"]},
                {"bit_length": 8, "is_test": True},
            ),
            (
                "conv2d",
                {"Input": ["xq"], "Filter": ["w"]},
                {"Output": ["c"]},
                {"strides": [1, 1], "paddings": [0, 0], "groups": 1},
            ),
            (
                "fake_channel_wise_dequantize_max_abs",
                {"X": ["c"], "Scales": ["w@channel_scale", "deq@act_scale"]},
                {"Out": ["y"]},
                {"quant_bits": [8, 8], "quant_axis": 0},
            ),
        ]
        + fetch
    )
    variables = {
        "x": ([-1, 2, 4, 4], False),
        "xq": ([-1, 2, 4, 4], False),
        "c": ([-1, 3, 4, 4], False),
        "y": ([-1, 3, 4, 4], False),
    } | {k: (list(a.shape), True) for k, a in params.items()}
    directory = _save(tmp_path / "frozen", ops, variables, params)

    def reference(x):  # Paddle's kernels: ClipAndFakeQuant, conv on integers, ChannelDequantize
        q = np.round(np.clip(x, -s, s) / s * 127)
        return _conv_np(q, q_w, 0) * (w_scale / 127 * params["deq@act_scale"][0] / 127)[None, :, None, None]

    return directory, reference


@pytest.mark.parametrize("dequant_act_scale", [None, 2.0])
def test_frozen_fake_quant_conv_matches_paddle_formulas(tmp_path, dequant_act_scale):
    """The weight scale is the dequantize factor over the input's scale, whatever the two scales are."""
    directory, reference = _frozen_conv(tmp_path, dequant_act_scale)
    x = RNG.uniform(-1.4, 1.4, size=(2, 2, 4, 4)).astype(np.float32)  # inside the scale: no -128 case
    model = load_paddle_model(directory)
    assert [n.op_type for n in model.graph] == ["QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv"]
    np.testing.assert_allclose(_run(model, x), reference(x), rtol=1e-5, atol=1e-5)


def test_dequantize_of_a_tensor_no_quantized_op_made_is_refused(tmp_path):
    feed, fetch = _io("x", "y")
    params = {"s": np.array([2.0], np.float32)}
    ops = (
        feed
        + [
            ("relu", {"X": ["x"]}, {"Out": ["r"]}, {}),
            ("fake_dequantize_max_abs", {"X": ["r"], "Scale": ["s"]}, {"Out": ["y"]}, {"max_range": 127.0}),
        ]
        + fetch
    )
    variables = {"x": ([-1, 4], False), "r": ([-1, 4], False), "y": ([-1, 4], False), "s": ([1], True)}
    directory = _save(tmp_path / "m", ops, variables, params)
    with pytest.raises(UnsupportedOpError, match=r"op #2 'fake_dequantize_max_abs' \(output 'y'\).*'r'"):
        load_paddle_model(directory)


def test_unsupported_op_names_op_and_output(tmp_path):
    feed, fetch = _io("x", "pooled")
    ops = feed + [("roi_align", {"X": ["x"]}, {"Out": ["pooled"]}, {"pooled_height": 2})] + fetch
    directory = _save(tmp_path / "m", ops, {"x": ([-1, 2, 4, 4], False), "pooled": ([-1, 2, 2, 2], False)}, {})
    with pytest.raises(UnsupportedOpError, match=r"unsupported Paddle op 'roi_align' \(op #1, output 'pooled'\)"):
        load_paddle_model(directory)


def test_asymmetric_quantize_linear_is_refused(tmp_path):
    feed, fetch = _io("x", "y")
    params = {"s": np.array([2.0], np.float32), "zp": np.array([3.0], np.float32)}
    ops = (
        feed
        + [
            ("quantize_linear", {"X": ["x"], "Scale": ["s"], "ZeroPoint": ["zp"]}, {"Y": ["q"]}, {"bit_length": 8}),
            ("dequantize_linear", {"X": ["q"], "Scale": ["s"], "ZeroPoint": ["zp"]}, {"Y": ["y"]}, {"bit_length": 8}),
        ]
        + fetch
    )
    variables = {
        "x": ([-1, 4], False),
        "q": ([-1, 4], False),
        "y": ([-1, 4], False),
        "s": ([1], True),
        "zp": ([1], True),
    }
    directory = _save(tmp_path / "m", ops, variables, params)
    with pytest.raises(UnsupportedOpError, match="non-zero zero point"):
        load_paddle_model(directory)


def test_truncated_and_oversized_parameter_files(tmp_path):
    directory, _ = _classifier(tmp_path, combined=True)
    params = directory / "__params__"
    data = params.read_bytes()
    params.write_bytes(data[:-5])
    with pytest.raises(ModelError, match=r"__params__: truncated parameter file"):
        load_paddle_model(directory)
    params.write_bytes(data + b"\0" * 8)
    with pytest.raises(ModelError, match="8 bytes left after the program's 7 parameters"):
        load_paddle_model(directory)


def test_missing_separate_parameter_file(tmp_path):
    directory, _ = _classifier(tmp_path, combined=False)
    (directory / "fc_w").unlink()
    with pytest.raises(ModelError, match="parameter file 'fc_w' is missing"):
        load_paddle_model(directory)


def test_corrupt_program_and_wrong_paths(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.pdmodel").write_bytes(b"\xff\xff\xff\xff not a protobuf")
    with pytest.raises(ModelError, match="model.pdmodel: not a Paddle program"):
        load_paddle_model(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_paddle_model(empty)
    with pytest.raises(ModelError, match="no Paddle program"):
        load_paddle_model(empty)
    pir = tmp_path / "pir"
    pir.mkdir()
    (pir / "model.json").write_text('{"program": {"regions": []}}')
    (pir / "model.pdiparams").write_bytes(b"")
    assert is_paddle_model(pir)
    with pytest.raises(ModelError, match=r"model.json: not a Paddle PIR program"):
        load_paddle_model(pir)
    (pir / "model.json").write_text("[1, 2")
    with pytest.raises(ModelError, match=r"model.json: not a Paddle PIR program \(JSONDecodeError"):
        load_paddle_model(pir)
