"""Fused graphs run by int8kit's Predictor agree with onnxruntime on the original graphs."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit.ir.optimize import optimize_fp32
from int8kit.models import zoo

from .fusion_util import build, randn, run

predictor = pytest.importorskip("int8kit.runtime.predictor")

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def _check(proto, feeds, rtol=1e-4, atol=1e-4):
    fused = ir.serde.serialize_model(optimize_fp32(ir.serde.deserialize_model(proto)))
    want = run(proto, feeds)
    p = predictor.Predictor(fused, num_threads=1)
    got = p.run_dict(feeds)
    for name, value in zip([o.name for o in proto.graph.output], want, strict=True):
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenetv2_tiny", "hardswish_se_tiny", "concat_tiny"])
@pytest.mark.parametrize("batch", [1, 3])
def test_zoo_tiny(name, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    _check(zoo.build(name), {"input": x})


ACTS = """
      a = Conv <pads=[1,1,1,1]> (x, w1)
      b = LeakyRelu <alpha=0.2> (a)
      c = Conv <strides=[2,2], pads=[0,0,1,1]> (b, w2, b2)
      d = HardSigmoid <alpha=0.3, beta=0.4> (c)
      e = Conv (d, w3)
      y = Tanh (e)
"""
RELU_THEN_SUM = """
      a = Conv <pads=[1,1,1,1]> (x, w1)
      r = Relu (a)
      y = Add (x, r)
"""
MOVED_SUM = """
      a = Conv <pads=[1,1,1,1]> (x, w1)
      p = Conv (x, w4)
      z = Relu (p)
      y = Add (a, p)
"""


@pytest.mark.parametrize(
    ("body", "outs"),
    [
        (ACTS, "float[N,4,3,3] y"),
        (RELU_THEN_SUM, "float[N,4,6,6] y"),
        (MOVED_SUM, "float[N,4,6,6] y, float[N,4,6,6] z"),
    ],
    ids=["activations", "relu_then_sum", "moved_sum"],
)
def test_hand_written(body, outs):
    text = f"{HEAD}\n g (float[N,4,6,6] x) => ({outs}) {{{body}}}"
    weights = {
        "w1": randn(4, 4, 3, 3, seed=1, scale=0.3),
        "w2": randn(4, 4, 3, 3, seed=2, scale=0.3),
        "b2": randn(4, seed=3),
        "w3": randn(4, 4, 1, 1, seed=4),
        "w4": randn(4, 4, 1, 1, seed=5),
    }
    used = {w for w in weights if w in body}
    _check(build(text, {k: v for k, v in weights.items() if k in used}), {"x": randn(2, 4, 6, 6, seed=9)})


def test_matmul_head():
    text = f"""{HEAD}
    g (float[N,8] x) => (float[N,5] y) {{
      m = MatMul (x, w)
      a = Add (m, b)
      y = Sigmoid (a)
    }}"""
    _check(build(text, {"w": randn(8, 5), "b": randn(5, seed=1)}), {"x": randn(3, 8, seed=2)})
