"""Helpers for the converter tests: QDQ models from onnxruntime and int8kit, hand-written QDQ graphs,
running the pipeline up to one pass, and agreement metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from examples.zoo.ort_qdq import ORT_VARIANTS, ort_qdq  # noqa: F401  (re-exported for the tests)
from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import convert
from int8kit.evaluate.metrics import row_cosines

SIZE = 32
N_CALIB = 16
N_EVAL = 256
EVAL_BATCH = 64
OPSET = 17


def calib_inputs(size: int = SIZE, n: int = N_CALIB, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def eval_inputs(size: int = SIZE, n: int = N_EVAL, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


class Weights:
    """Seeded random float32 initializers for hand-built test nets: weights("w0", 8, 3, 3, 3, scale=0.3)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, name: str, *shape: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), name)


def classifier(
    nodes, inits, name: str, classes: int = 10, input_dims=("N", 3, SIZE, SIZE), strict: bool = True
) -> onnx.ModelProto:
    """A hand-built image classifier: input "x" (input_dims), output "y" [N, classes], opset 17, shapes inferred."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=strict)


def int8kit_qdq(model: onnx.ModelProto, calib: np.ndarray) -> onnx.ModelProto:
    from int8kit.quantize import QuantizeConfig, quantize_model

    return quantize_model(model, calib, QuantizeConfig(num_samples=len(calib), backend="onnxruntime"))


def ort_session(model: onnx.ModelProto | str | Path, optimize: bool = True) -> ort.InferenceSession:
    """optimize=False: the graph exactly as written (onnxruntime's QDQ rewrites change rounding)."""
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_batched(fn, x: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def run_ort(model, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    sess = ort_session(model, optimize)
    name = sess.get_inputs()[0].name
    return run_batched(lambda b: sess.run(None, {name: b})[0], x)


def run_int8kit(model, x: np.ndarray) -> np.ndarray:
    from int8kit.runtime.predictor import Predictor

    p = Predictor(model, num_threads=2)
    return run_batched(p.run, x)


def run_int8kit_output(model, x: np.ndarray, name: str) -> np.ndarray:
    """The tensor `name` of the model, computed by the int8kit runtime."""
    from int8kit.runtime.predictor import Predictor

    p = Predictor(model, num_threads=2, extra_outputs=[name])
    return run_batched(lambda b: p.run_dict({p.input_names[0]: b})[name], x)


cosine_rows = row_cosines


def assert_agrees(got: np.ndarray, want: np.ndarray, cos: float = 0.999, top1: float = 0.99) -> None:
    c = cosine_rows(got, want)
    agree = float(np.mean(got.argmax(1) == want.argmax(1)))
    assert c.mean() >= cos, f"mean cosine {c.mean():.5f} < {cos} (min {c.min():.5f})"
    assert agree >= top1, f"top-1 agreement {agree:.3f} < {top1}"


def run_until(model, last: str, config: ConvertConfig | None = None) -> ir.Model:
    """The model after the conversion pipeline's passes up to and including `last`."""
    return convert(model, config or ConvertConfig(), stop_after=last).model


# -- hand-written QDQ graphs ---------------------------------------------------------------------
class QDQGraph:
    """A tiny QDQ graph written with onnx.helper: float input, Q/DQ pairs, int8 weights behind DQ."""

    def __init__(self, shape=("N", 3, 8, 8), seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.input_shape = shape
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def const(self, name: str, array) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, name: str | None = None, **attrs) -> str:
        output = output or self._name(op.lower() + "_out")
        self.nodes.append(helper.make_node(op, inputs, [output], name=name or self._name(op.lower()), **attrs))
        return output

    def qdq(self, x: str, scale: float, zero_point: int = 0, dtype=np.uint8, output: str | None = None) -> str:
        """Q -> DQ on activation x."""
        tag = self._name("q")
        s = self.const(f"{tag}_scale", np.array(scale, np.float32))
        zp = self.const(f"{tag}_zp", np.array(zero_point, dtype))
        q = self.node("QuantizeLinear", [x, s, zp], f"{tag}_q", name=f"{tag}_quant")
        return self.node("DequantizeLinear", [q, s, zp], output, name=f"{tag}_dequant")

    def weight(self, w: np.ndarray, per_channel: bool = True) -> tuple[str, np.ndarray, np.ndarray]:
        """Symmetric int8 weights behind a DequantizeLinear; returns (DQ output, int8 array, scales)."""
        tag = self._name("w")
        flat = np.abs(w.reshape(w.shape[0], -1))
        scales = (flat.max(1) if per_channel else np.array(flat.max())) / 127.0
        shaped = scales.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else scales
        q = np.clip(np.rint(w / shaped), -127, 127).astype(np.int8)
        scales = scales.astype(np.float32)
        wq = self.const(f"{tag}_int8", q)
        ws = self.const(f"{tag}_scale", scales)
        wzp = self.const(f"{tag}_zp", np.zeros_like(scales, dtype=np.int8))
        attrs = {"axis": 0} if per_channel else {}
        out = self.node("DequantizeLinear", [wq, ws, wzp], f"{tag}_float", name=f"{tag}_dequant", **attrs)
        return out, q, scales

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int = 3,
        relu: bool = False,
        per_channel: bool = True,
        name: str | None = None,
        output: str | None = None,
        **attrs,
    ) -> str:
        w = self.rng.standard_normal((cout, cin // attrs.get("group", 1), k, k)).astype(np.float32)
        w *= np.sqrt(2.0 / (cin * k * k))
        wdq, _, _ = self.weight(w, per_channel)
        b = self.const(self._name("bias"), self.rng.normal(0, 0.1, cout).astype(np.float32))
        pads = attrs.pop("pads", [k // 2] * 4)
        y = self.node("Conv", [x, wdq, b], None if relu else output, name=name, pads=pads, **attrs)
        return self.node("Relu", [y], output) if relu else y

    def build(self, outputs: list[str], output_shapes=None) -> onnx.ModelProto:
        shapes = output_shapes or [None] * len(outputs)
        graph = helper.make_graph(
            self.nodes,
            "qdq_test",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(self.input_shape))],
            [
                helper.make_tensor_value_info(o, TensorProto.FLOAT, s)
                for o, s in zip(outputs, shapes, strict=True)
                if s is not None
            ]
            + [helper.make_empty_tensor_value_info(o) for o, s in zip(outputs, shapes, strict=True) if s is None],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def by_name(model: ir.Model, name: str) -> ir.Node:
    for node in model.graph:
        if node.name == name:
            return node
    raise KeyError(f"no node {name!r}; have {[n.name for n in model.graph]}")


def value(model: ir.Model, name: str) -> ir.Value:
    for node in model.graph:
        for out in node.outputs:
            if out.name == name:
                return out
    for v in model.graph.inputs:
        if v.name == name:
            return v
    raise KeyError(name)
