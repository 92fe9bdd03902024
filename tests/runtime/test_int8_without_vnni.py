"""INT8 on a CPU without VNNI: oneDNN's int8 convolutions and inner products there sum u8 x s8 pairs into
16 bits (vpmaddubsw), which saturates, so int8kit runs those nodes on f32 kernels over the dequantized
values. `ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN act as on such a CPU (on an AVX2-only CPU it changes
nothing), in a child process because the cap is read once per process.

The model is built to saturate: u8 activations near 255 against weights near +-127 make adjacent pairs
sum past 32767. The reference is the QDQ file run by onnxruntime with its optimisations off (the spec's
float arithmetic; its fused int8 kernels have the same 16-bit path on such CPUs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from ._util import init, make_model, vinfo

X_SCALE, W_SCALE = 0.01, 0.002


def saturating_qdq_model(seed: int = 0):
    """x -> Q/DQ (u8) -> Conv 3x3 (s8 weights) -> Relu -> Q/DQ (u8) -> Flatten -> Gemm (s8 weights) -> y."""
    rng = np.random.default_rng(seed)
    c, oc, classes, hw = 16, 8, 10, 6
    w = (rng.integers(100, 128, (oc, c, 3, 3)) * rng.choice([-1, 1], (oc, 1, 1, 1))).astype(np.int8)
    fc = (rng.integers(90, 128, (classes, oc * hw * hw)) * rng.choice([-1, 1], (classes, 1))).astype(np.int8)
    conv_out = 0.5 * c * 9 * 255 * 127 * X_SCALE * W_SCALE  # about half the largest possible sum
    y_scale, fc_scale = conv_out / 255, 1.0 / (oc * hw * hw * 127)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "ys", "yz"], ["rd"]),
        helper.make_node("Flatten", ["rd"], ["f"]),
        helper.make_node("DequantizeLinear", ["fc", "fs"], ["fcd"]),
        helper.make_node("Gemm", ["f", "fcd"], ["y"], transB=1),
    ]
    inits = [
        init("xs", np.float32(X_SCALE)),
        init("xz", np.uint8(0)),
        init("w", w),
        init("ws", np.float32(W_SCALE)),
        init("ys", np.float32(y_scale)),
        init("yz", np.uint8(0)),
        init("fc", fc),
        init("fs", np.float32(fc_scale)),
    ]
    x_info = vinfo("x", [2, c, hw, hw])
    model = make_model(nodes, [x_info], [vinfo("y", [2, classes])], inits)
    x = rng.uniform(2.0, 2.55, (2, c, hw, hw)).astype(np.float32)  # codes 200-255
    return model, x


def _spec(model, x: np.ndarray) -> list[np.ndarray]:
    """The logits and the conv's u8 output codes, as the file's float arithmetic computes them."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.graph.output.append(vinfo("rq", None, TensorProto.UINT8))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


CHILD = """
    import logging, sys
    import numpy as np
    from tests.runtime.test_int8_without_vnni import saturating_qdq_model
    from int8kit.runtime import dnnl
    from int8kit.runtime.predictor import Predictor
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    model, x = saturating_qdq_model()
    np.save("{y}", Predictor(model, num_threads=1).run(x))
    print("isa", dnnl.effective_isa(), file=sys.stderr)
"""


def test_int8_conv_and_dense_exact_where_onednn_would_saturate(tmp_path):
    code = textwrap.dedent(CHILD.format(y=tmp_path / "y.npy"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ONEDNN_VERBOSE": "1"}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert child.returncode == 0, child.stderr
    assert "isa avx2" in child.stderr, child.stderr
    assert "f32 kernels" in child.stderr, child.stderr  # the warning says what runs instead
    execs = [line.split(",") for line in child.stdout.splitlines() if line.startswith("onednn_verbose,exec,cpu,")]
    compute = [f for f in execs if f[3] in ("convolution", "inner_product")]
    assert len(compute) == 2 and all("src_f32" in f[6] and "wei_f32" in f[6] for f in compute), compute
    assert not [f[4] for f in execs if f[4].startswith("ref")]

    model, x = saturating_qdq_model()
    want_y, want_rq = _spec(model, x)
    assert 0.02 < (want_rq == 255).mean() < 0.5  # the range is used and saturates a little, as designed
    y = np.load(tmp_path / "y.npy")
    # One u8 step of the conv output moves a logit by at most 127 * fc_scale * y_scale, about 4e-4 of its range.
    assert np.abs(y - want_y).max() <= 2e-3 * np.abs(want_y).max(), np.abs(y - want_y).max()
