"""quantize_weights: INT8 Conv/Dense weights as int8 with one symmetric scale per output channel,
computed on the folded float weights (after conv+bn)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from ._util import QDQGraph, run_until


def _numpy_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: s[oc] = max|W[oc]| / 127, q = round(W / s[oc])."""
    scales = np.array([np.abs(w[oc]).max() / 127.0 for oc in range(w.shape[0])], np.float32)
    q = np.stack([np.rint(w[oc] / scales[oc]) for oc in range(w.shape[0])]).astype(np.int8)
    return q, scales


def _compute(m: ir.Model) -> list[ir.Node]:
    return [n for n in m.graph if n.domain == "int8kit" and n.op_type in ("Conv", "Dense")]


def test_conv_bn_fold_keeps_the_files_int8_values_and_scales_the_grid_per_channel():
    """The QDQ file's int8 weights survive a BN fold: the fold multiplies each channel's scale instead
    (a negative gamma flips the channel's sign), so the INT8 conv multiplies by the file's integers."""
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    w = g.rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    wdq, q_in, s_in = g.weight(w, per_channel=False)  # per-tensor in the QDQ model
    c = g.node("Conv", [x, wdq], "c", name="conv", pads=[1, 1, 1, 1])
    gamma = g.rng.uniform(0.2, 3.0, 6).astype(np.float32) * np.array([1, -1, 1, 1, -1, 1], np.float32)
    beta = g.rng.normal(0, 0.1, 6).astype(np.float32)
    mean, var = g.rng.normal(0, 0.1, 6).astype(np.float32), g.rng.uniform(0.5, 2.0, 6).astype(np.float32)
    bn = [g.const(n, a) for n, a in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
    y = g.node("BatchNormalization", [c, *bn], "y", name="bn", epsilon=1e-5)
    m = run_until(g.build([y]), "quantize_weights")
    (conv,) = _compute(m)
    factor = gamma / np.sqrt(var + 1e-5)
    got_q = conv.inputs[1].const_value.numpy()
    sign = np.sign(factor)[:, None, None, None].astype(np.int8)
    np.testing.assert_array_equal(got_q, q_in * sign)
    np.testing.assert_allclose(conv.attributes["w_scales"].as_floats(), float(s_in) * np.abs(factor), rtol=1e-5)


def test_symmetric_per_channel_weights_come_back_unchanged():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    wdq, q_in, s_in = g.weight(g.rng.standard_normal((4, 3, 3, 3)).astype(np.float32), per_channel=True)
    y = g.node("Conv", [x, wdq], "y", name="conv", pads=[1, 1, 1, 1])
    (conv,) = _compute(run_until(g.build([y]), "quantize_weights"))
    np.testing.assert_array_equal(conv.inputs[1].const_value.numpy(), q_in)
    np.testing.assert_allclose(conv.attributes["w_scales"].as_floats(), s_in, rtol=1e-6)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_dense_weights_keep_the_files_grid(trans_b):
    g = QDQGraph(shape=("N", 16))
    x = g.qdq("input", 0.02, 0, np.int8)
    w = g.rng.standard_normal((5, 16)).astype(np.float32)  # [M, K]
    stored = w if trans_b else np.ascontiguousarray(w.T)
    wdq, q_in, s_in = g.weight(stored, per_channel=False)
    y = g.node("Gemm", [x, wdq], "y", name="fc", transB=trans_b)
    (dense,) = _compute(run_until(g.build([y]), "quantize_weights"))
    np.testing.assert_array_equal(dense.inputs[1].const_value.numpy(), q_in if trans_b else q_in.T)
    np.testing.assert_allclose(dense.attributes["w_scales"].as_floats(), [float(s_in)] * 5, rtol=1e-6)
