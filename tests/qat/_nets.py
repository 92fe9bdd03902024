"""A tiny untrained net with every op QAT meets in the example models, and labelled images for it."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 12
CLASSES = 5


def build_net(seed: int = 0) -> onnx.ModelProto:
    """Conv+BN+Relu, Conv+Clip(0,6) (ReLU6), a linear Conv, residual Add, MaxPool, GAP, Flatten, Gemm.

    conv1 and conv2 share one zero bias initializer, as exporters write for deduplicated constants.
    """
    rng = np.random.default_rng(seed)
    inits = []

    def const(name, array, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def w(cout, cin):
        return rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))

    nodes = [
        helper.make_node("Conv", ["input", const("c0.w", w(6, 2))], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization",
            [
                "c0",
                const("bn.g", rng.uniform(0.5, 1.5, 6)),
                const("bn.b", rng.normal(0, 0.2, 6)),
                const("bn.m", rng.normal(0, 0.1, 6)),
                const("bn.v", rng.uniform(0.5, 1.5, 6)),
            ],
            ["bn0"],
            name="bn0",
        ),
        helper.make_node("Relu", ["bn0"], ["r0"], name="relu0"),
        helper.make_node(
            "Conv", ["r0", const("c1.w", w(6, 6)), const("zero.b", np.zeros(6))], ["c1"], name="conv1", pads=[1] * 4
        ),
        helper.make_node("Clip", ["c1", const("lo", 0.0), const("hi", 6.0)], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", const("c2.w", w(6, 6)), "zero.b"], ["c2"], name="conv2", pads=[1] * 4),
        helper.make_node("Add", ["c2", "r0"], ["res"], name="add"),
        helper.make_node("MaxPool", ["res"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node(
            "Gemm",
            [
                "flat",
                const("fc.w", rng.standard_normal((CLASSES, 6)) / np.sqrt(6)),
                const("fc.b", rng.normal(0, 0.1, CLASSES)),
            ],
            ["logits"],
            name="fc",
            transB=1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "qat_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def make_pixels(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 2, SIZE, SIZE) whose label is which fifth of the image is brightest (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    pixels = rng.integers(0, 90, (n, 2, SIZE, SIZE))
    band = SIZE // CLASSES + 1
    for i, y in enumerate(labels):
        pixels[i, :, :, y * band : (y + 1) * band] += 150
    return np.clip(pixels, 0, 255).astype(np.uint8), labels.astype(np.int64)


MEAN = (0.4, 0.4)
STD = (0.3, 0.3)


def make_images(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    pixels, labels = make_pixels(n, seed)
    x = (pixels.astype(np.float32) / 255 - np.float32(MEAN[0])) / np.float32(STD[0])
    return x.astype(np.float32), labels
