"""Test inputs: a small conv net (Conv+BN+Relu, residual Add, MaxPool, Gemm) and normalised images."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 16
CLASSES = 10


def build_net(seed: int = 0, batch: int | str = "N") -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def conv_bn(x, name, cin, cout, relu):
        w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
        nodes.append(helper.make_node("Conv", [x, const(f"{name}.w", w)], [f"{name}.c"], name=name, pads=[1, 1, 1, 1]))
        bn = [
            const(f"{name}.gamma", rng.uniform(0.5, 1.5, cout)),
            const(f"{name}.beta", rng.normal(0, 0.1, cout)),
            const(f"{name}.mean", rng.normal(0, 0.1, cout)),
            const(f"{name}.var", rng.uniform(0.5, 1.5, cout)),
        ]
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.c", *bn], [f"{name}.bn"], name=f"{name}_bn"))
        if not relu:
            return f"{name}.bn"
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"], name=f"{name}_relu"))
        return f"{name}.relu"

    r0 = conv_bn("input", "conv0", 3, 8, relu=True)
    r1 = conv_bn(r0, "conv1", 8, 8, relu=True)
    b2 = conv_bn(r1, "conv2", 8, 8, relu=False)
    nodes.append(helper.make_node("Add", [b2, r0], ["res"], name="add"))
    nodes.append(helper.make_node("Relu", ["res"], ["res.relu"], name="add_relu"))
    nodes.append(helper.make_node("MaxPool", ["res.relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    fc_w = const("fc.w", rng.standard_normal((CLASSES, 8)) * np.sqrt(1.0 / 8))
    fc_b = const("fc.b", rng.normal(0, 0.1, CLASSES))
    nodes.append(helper.make_node("Gemm", ["flat", fc_w, fc_b], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes,
        "tiny_resnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def make_images(n: int, seed: int = 1) -> np.ndarray:
    """Smooth-ish normalised 'images': low-frequency patterns plus noise, float32 (N, 3, SIZE, SIZE)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    freq = rng.uniform(0.5, 3.0, (n, 3, 2, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 3, 1, 1))
    img = np.sin(2 * np.pi * (freq[:, :, 0] * xx + freq[:, :, 1] * yy) + phase)
    return (img + 0.3 * rng.standard_normal(img.shape)).astype(np.float32)
