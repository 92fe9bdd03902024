"""bf16 as a third precision: Predictor(precision="bf16") against FP32 and an exact bf16 emulation.

Each reference is computed by onnxruntime: the FP32 model as it is, and the same model with the values
oneDNN rounds to bf16 rounded by Cast to BFLOAT16 and back (inputs of every bf16 layer, weights rounded
in numpy, and the intermediate tensors that stay bf16 between bf16 layers). bf16 must be near FP32 (an
8-bit mantissa) and much nearer the emulation, so silently running FP32, or rounding in the wrong
places, fails.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from int8kit.errors import ConfigError, UnsupportedOpError
from int8kit.runtime.precision import bf16_supported
from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, rel_err, run_ort, vinfo

needs_bf16 = pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16 kernels")


def _bf16_kernel(impl: str) -> bool:
    """A reduced-precision kernel for a float model: `..._bf16` names on AVX512-BF16, `..._amx` on AMX CPUs
    (oneDNN's float32 kernels never use AMX tiles)."""
    return "bf16" in impl or "amx" in impl


def bf16_round(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 -> float32 with round to nearest even, in numpy."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


class Net:
    """An ONNX graph written twice: as it is (FP32) and with bf16 roundings where oneDNN makes them."""

    def __init__(self, emulate: bool, seed: int = 0) -> None:
        self.emulate = emulate
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def round(self, x: str) -> str:
        if not self.emulate:
            return x
        self.nodes.append(helper.make_node("Cast", [x], [x + "_b"], to=TensorProto.BFLOAT16))
        self.nodes.append(helper.make_node("Cast", [x + "_b"], [x + "_r"], to=TensorProto.FLOAT))
        return x + "_r"

    def weight(self, name: str, shape: tuple[int, ...], scale: float) -> str:
        w = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(init(name, bf16_round(w) if self.emulate else w))
        return name

    def bias(self, name: str, n: int) -> str:
        self.inits.append(init(name, self.rng.normal(0, 0.1, n).astype(np.float32)))
        return name

    def op(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, name: str, **attrs) -> str:
        w = self.weight(name + ".w", (cout, cin // attrs.get("group", 1), k, k), np.sqrt(2.0 / (cin * k * k)))
        return self.op("Conv", [x, w, self.bias(name + ".b", cout)], name, pads=[k // 2] * 4, **attrs)

    def model(self, shape: list[int], out: str, out_shape: list[int]) -> onnx.ModelProto:
        return make_model(self.nodes, [vinfo("x", shape)], [vinfo(out, out_shape)], self.inits)


def small_cnn(emulate: bool) -> onnx.ModelProto:
    """conv+relu -> maxpool -> conv+relu -> depthwise -> 1x1 conv + residual + relu -> GAP -> flatten -> gemm.

    Every layer reads bf16: the tensors between layers stay bf16 (rounded once, where a layer writes
    them); the model's input is rounded by the first conv, its output stays float32.
    """
    n = Net(emulate)
    y = n.op("Relu", [n.conv(n.round("x"), 8, 16, 3, "c1")], "r1")
    p = n.round(n.op("MaxPool", [n.round(y)], "p1", kernel_shape=[2, 2], strides=[2, 2]))
    y = n.round(n.op("Relu", [n.conv(p, 16, 16, 3, "c2")], "r2"))
    y = n.round(n.op("Relu", [n.conv(y, 16, 16, 3, "dw", group=16)], "r3"))
    y = n.op("Relu", [n.op("Add", [n.conv(y, 16, 16, 1, "c4"), p], "sum")], "r4")
    y = n.round(n.op("GlobalAveragePool", [n.round(y)], "gap"))
    y = n.op("Flatten", [y], "flat")
    w = n.weight("fc.w", (10, 16), 0.3)
    n.op("Gemm", [y, w, n.bias("fc.b", 10)], "logits", transB=1)
    return n.model(["N", 8, 12, 12], "logits", ["N", 10])


def _x(shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _check_bf16(got: np.ndarray, fp32: np.ndarray, emulated: np.ndarray, emulated_tol: float) -> None:
    err_fp32, err_emulated = rel_err(got, fp32), rel_err(got, emulated)
    assert got.dtype == np.float32
    assert err_fp32 < 3e-2, f"bf16 is {err_fp32:.3g} off FP32 (more than bf16 rounding explains)"
    assert err_emulated < emulated_tol, f"bf16 is {err_emulated:.3g} off the bf16 emulation (FP32: {err_fp32:.3g})"
    assert err_fp32 > 10 * err_emulated, f"no bf16 effect: FP32 {err_fp32:.3g} vs emulation {err_emulated:.3g}"


@needs_bf16
def test_bf16_conv_matches_emulation():
    models = {}
    for emulate in (False, True):
        n = Net(emulate)
        n.op("Relu", [n.conv(n.round("x"), 32, 48, 3, "conv")], "y")
        models[emulate] = n.model([2, 32, 10, 10], "y", [2, 48, 10, 10])
    x = _x((2, 32, 10, 10))
    got = Predictor(models[False], num_threads=1, precision="bf16").run(x)
    _check_bf16(got, run_ort(models[False], {"x": x}), run_ort(models[True], {"x": x}), 1e-5)


@needs_bf16
def test_bf16_dense_matches_emulation():
    models = {}
    for emulate in (False, True):
        n = Net(emulate)
        n.op("Gemm", [n.round("x"), n.weight("w", (64, 256), 0.1), n.bias("b", 64)], "y", transB=1)
        models[emulate] = n.model([4, 256], "y", [4, 64])
    x = _x((4, 256))
    got = Predictor(models[False], num_threads=1, precision="bf16").run(x)
    _check_bf16(got, run_ort(models[False], {"x": x}), run_ort(models[True], {"x": x}), 1e-5)


@needs_bf16
def test_bf16_model_keeps_bf16_between_layers_and_matches_emulation():
    x = _x((3, 8, 12, 12))
    fp32_model = small_cnn(emulate=False)
    p = Predictor(fp32_model, num_threads=2, precision="bf16")
    assert p.precision == "bf16"
    got = p.run(x)
    # The emulation rounds once per tensor; oneDNN's f32 accumulation order can flip a rare last bf16 bit.
    _check_bf16(got, run_ort(fp32_model, {"x": x}), run_ort(small_cnn(emulate=True), {"x": x}), 1e-4)
    kernels = p.kernels(x.shape)
    compute = [(label, impl) for label, impl in kernels if label.startswith(("c1", "c2", "dw", "c4", "logits"))]
    assert len(compute) == 5, kernels
    assert all(_bf16_kernel(impl) for _, impl in compute), compute
    assert not [k for k in kernels if k[1].startswith("ref")], kernels
    # Data stays bf16 between layers: the only conversions are the model's input and output.
    reorders = [label for label, _ in kernels if label.startswith("reorder") or label.startswith("output")]
    assert len(reorders) <= 3, reorders
    prog = p.program({"x": x.shape})
    assert prog.outputs["logits"].dtype != 2  # dnnl.DT_BF16: the model's output stays float32


def branchy(emulate: bool) -> onnx.ModelProto:
    """c1's output feeds a bf16 conv and a Mul (FP32): it is written float32, rounded only where c2 reads it."""
    n = Net(emulate, seed=2)
    y = n.op("Relu", [n.conv(n.round("x"), 8, 16, 3, "c1")], "r1")
    z = n.conv(n.round(y), 16, 16, 3, "c2")
    n.inits.append(init("two", np.full((1, 16, 1, 1), 2.0, np.float32)))
    n.op("Add", [n.op("Mul", [y, "two"], "twice"), z], "out")
    return n.model(["N", 8, 6, 6], "out", ["N", 16, 6, 6])


@needs_bf16
def test_tensor_read_by_bf16_and_fp32_ops_stays_float32():
    x = _x((2, 8, 6, 6))
    got = Predictor(branchy(emulate=False), num_threads=1, precision="bf16").run(x)
    _check_bf16(got, run_ort(branchy(emulate=False), {"x": x}), run_ort(branchy(emulate=True), {"x": x}), 1e-5)


def test_fp32_is_the_default_and_unchanged():
    x = _x((2, 8, 12, 12))
    model = small_cnn(emulate=False)
    p = Predictor(model, num_threads=1)
    assert p.precision == "fp32"
    assert rel_err(p.run(x), run_ort(model, {"x": x})) < 1e-5
    assert not [impl for _, impl in p.kernels(x.shape) if _bf16_kernel(impl)]


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        Predictor(small_cnn(emulate=False), precision="fp16")


def _marked(value: str, int8: bool = False) -> onnx.ModelProto:
    """One int8kit.Conv with a precision attribute, as a converted model holds it."""
    w = np.random.default_rng(0).standard_normal((8, 4, 1, 1)).astype(np.int8 if int8 else np.float32)
    attrs = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1, precision=value)
    if int8:
        attrs.update(x_scale=0.1, w_scales=[0.01] * 8, y_type=1)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", domain="int8kit", **attrs)
    x_type = TensorProto.UINT8 if int8 else TensorProto.FLOAT
    model = make_model(
        [node],
        [vinfo("x", [1, 4, 3, 3], x_type)],
        [vinfo("y", [1, 8, 3, 3])],
        [init("w", w)],
        extra_opsets=[("int8kit", 1)],
    )
    model.metadata_props.add(key="int8kit.optimized", value="int8")
    return model


@needs_bf16
def test_node_attribute_runs_that_layer_bf16():
    p = Predictor(_marked("bf16"), num_threads=1)
    assert p.precision == "fp32"
    assert _bf16_kernel([impl for label, impl in p.kernels((1, 4, 3, 3)) if label == "conv"][0])


@pytest.mark.parametrize(("value", "int8", "message"), [("fp16", False, "precision 'fp16'"), ("bf16", True, "int8")])
def test_bad_precision_attributes_name_the_node(value, int8, message):
    x = np.zeros((1, 4, 3, 3), np.uint8 if int8 else np.float32)
    with pytest.raises(UnsupportedOpError, match=f"node 'conv'.*{message}"):
        Predictor(_marked(value, int8), num_threads=1).run(x)


def _run_child(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


CHILD = """
    import logging, sys
    import numpy as np
    from tests.runtime.test_bf16 import small_cnn
    from int8kit.runtime.predictor import Predictor
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    x = np.random.default_rng(1).standard_normal((2, 8, 12, 12)).astype(np.float32)
    p = Predictor(small_cnn(emulate=False), num_threads=1, precision="bf16")
    np.save("{out}", p.run(x))
    print("precision", p.precision, file=sys.stderr)
"""


@needs_bf16
def test_onednn_verbose_shows_bf16_kernels_and_no_reference_kernel(tmp_path):
    child = _run_child(CHILD.format(out=tmp_path / "y.npy"), ONEDNN_VERBOSE="1")
    assert child.returncode == 0, child.stderr
    execs = [line.split(",") for line in child.stdout.splitlines() if line.startswith("onednn_verbose,exec,cpu,")]
    kinds = {}
    for fields in execs:
        kinds.setdefault(fields[3], []).append(fields)
    assert len(kinds["convolution"]) == 4 and len(kinds["inner_product"]) == 1, sorted(kinds)
    for fields in kinds["convolution"] + kinds["inner_product"]:
        assert _bf16_kernel(fields[4]) and "src_bf16" in fields[6] and "wei_bf16" in fields[6], fields
    assert not [f for f in execs if f[4].startswith("ref")], [f[4] for f in execs]


def test_without_bf16_isa_a_warning_and_fp32(tmp_path):
    """ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI makes oneDNN act as on a CPU without bf16 (it would only
    emulate bf16, slower than FP32): int8kit says so and runs FP32, exactly as precision="fp32" does."""
    child = _run_child(CHILD.format(out=tmp_path / "y.npy"), ONEDNN_MAX_CPU_ISA="AVX512_CORE_VNNI")
    assert child.returncode == 0, child.stderr
    assert "no native bf16 kernels" in child.stderr and "running FP32" in child.stderr, child.stderr
    assert "precision fp32" in child.stderr
    x = _x((2, 8, 12, 12))
    model = small_cnn(emulate=False)
    assert rel_err(np.load(tmp_path / "y.npy"), run_ort(model, {"x": x})) < 1e-5


def test_precision_plan_warning_is_logged(caplog, monkeypatch):
    """The same decision in process: with bf16 reported unavailable, a bf16 request logs and runs FP32."""
    from int8kit.runtime import precision

    monkeypatch.setattr(precision, "bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING, logger="int8kit.runtime.precision"):
        p = Predictor(small_cnn(emulate=False), num_threads=1, precision="bf16")
    assert p.precision == "fp32"
    assert "no native bf16 kernels" in caplog.text
    assert not [impl for _, impl in p.kernels((1, 8, 12, 12)) if _bf16_kernel(impl)]
