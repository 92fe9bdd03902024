"""Random-weight ONNX image classifiers for tests and benchmarks (no downloads).

Every Conv is followed by a BatchNormalization with non-trivial statistics, so the BN fold matters;
weights are He-normal so activations stay O(1) through the depth and INT8 calibration is meaningful.
All models: opset 17, input "input" [N, 3, H, W] with a symbolic batch "N", output "logits".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from int8kit.errors import ConfigError

logger = logging.getLogger(__name__)

OPSET = 17
IR_VERSION = 8
INPUT = "input"
OUTPUT = "logits"


class _Graph:
    """A tiny graph builder: each method adds nodes (and random initializers) and returns the output name."""

    def __init__(self, name: str, seed: int, size: int, channels: int = 3) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.size = size
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.counts: dict[str, int] = {}
        self.input = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", channels, size, size])

    # -- plumbing ---------------------------------------------------------------------------------
    def _name(self, kind: str) -> str:
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return f"{kind.lower()}_{n}"

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        name = self._name(op)
        out = output or f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    # -- layers -----------------------------------------------------------------------------------
    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int = 1,
        stride: int = 1,
        group: int = 1,
        dilation: int = 1,
        pad: int | None = None,
        bias: bool = False,
        gain: float = 2.0,
        auto_pad: str | None = None,
    ) -> str:
        """Conv with He-normal weights (std = sqrt(gain / fan_in)); `pad` defaults to 'same' for odd k."""
        name = self._name("Conv")
        fan_in = cin // group * k * k
        w = self.rng.normal(0.0, np.sqrt(gain / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        inputs = [x, self.const(f"{name}.weight", w)]
        if bias:
            inputs.append(self.const(f"{name}.bias", self.rng.normal(0, 0.1, cout).astype(np.float32)))
        attrs: dict = {"kernel_shape": [k, k], "strides": [stride, stride], "dilations": [dilation, dilation]}
        if group != 1:
            attrs["group"] = group
        if auto_pad is not None:
            attrs["auto_pad"] = auto_pad
        else:
            p = dilation * (k - 1) // 2 if pad is None else pad
            attrs["pads"] = [p, p, p, p]
        out = f"{name}_out"
        self.nodes.append(helper.make_node("Conv", inputs, [out], name=name, **attrs))
        return out

    def bn(self, x: str, c: int, gamma_scale: float = 1.0) -> str:
        """BatchNormalization with random but plausible statistics (E[gamma^2 / var] ~ gamma_scale^2)."""
        name = self._name("BatchNormalization")
        r = self.rng
        var = np.exp(r.uniform(-0.5, 0.5, c)).astype(np.float32)
        gamma = (gamma_scale * np.sqrt(var) * r.uniform(0.7, 1.3, c)).astype(np.float32)
        beta = r.normal(0.0, 0.1, c).astype(np.float32)
        mean = r.normal(0.0, 0.1, c).astype(np.float32)
        params = [
            self.const(f"{name}.{p}", a)
            for p, a in zip(("scale", "B", "mean", "var"), (gamma, beta, mean, var), strict=True)
        ]
        out = f"{name}_out"
        self.nodes.append(helper.make_node("BatchNormalization", [x, *params], [out], name=name, epsilon=1e-5))
        return out

    def act(self, x: str, kind: str | None) -> str:
        if kind is None:
            return x
        if kind == "relu":
            return self.node("Relu", [x])
        if kind == "relu6":
            lo = self.const(f"{self._name('clip_min')}", np.array(0.0, np.float32))
            hi = self.const(f"{self._name('clip_max')}", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi])
        if kind == "hardswish":
            return self.node("HardSwish", [x])
        if kind == "hardsigmoid":
            return self.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        if kind == "sigmoid":
            return self.node("Sigmoid", [x])
        raise ValueError(f"unknown activation {kind!r}")

    def conv_bn_act(self, x: str, cin: int, cout: int, act: str | None = "relu", gamma_scale=1.0, **kw) -> str:
        return self.act(self.bn(self.conv(x, cin, cout, **kw), cout, gamma_scale), act)

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def maxpool(self, x: str, k: int = 3, stride: int = 2, pad: int = 1) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def gap(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x])

    def gemm_head(self, x: str, cin: int, classes: int, output: str = OUTPUT) -> str:
        """torch.nn.Linear as exported: Gemm(x, W[classes, cin], b) with transB=1."""
        name = self._name("fc")
        w = self.rng.normal(0.0, np.sqrt(1.0 / cin), (classes, cin)).astype(np.float32)
        b = self.rng.normal(0.0, 0.01, classes).astype(np.float32)
        inputs = [x, self.const(f"{name}.weight", w), self.const(f"{name}.bias", b)]
        return self.node("Gemm", inputs, output, transB=1)

    def build(self, out: str, classes: int) -> onnx.ModelProto:
        output = helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", classes])
        graph = helper.make_graph(self.nodes, self.name, [self.input], [output], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="int8kit.zoo")
        model.ir_version = IR_VERSION
        return model


# -- tiny models ----------------------------------------------------------------------------------
def resnet_tiny(seed: int = 0, size: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Stem, MaxPool, a basic block, a strided basic block with a 1x1 projection, a bottleneck, GAP+Gemm."""
    g = _Graph("resnet_tiny", seed, size)
    x = g.conv_bn_act(INPUT, 3, 16, k=3)
    x = g.maxpool(x)
    # basic block, identity shortcut
    y = g.conv_bn_act(x, 16, 16, k=3)
    y = g.conv_bn_act(y, 16, 16, k=3, act=None, gamma_scale=0.5)
    x = g.act(g.add(y, x), "relu")
    # basic block, stride 2 with a projection shortcut
    y = g.conv_bn_act(x, 16, 32, k=3, stride=2)
    y = g.conv_bn_act(y, 32, 32, k=3, act=None, gamma_scale=0.5)
    s = g.conv_bn_act(x, 16, 32, k=1, stride=2, act=None, gain=1.0)
    x = g.act(g.add(s, y), "relu")
    # bottleneck, identity shortcut
    y = g.conv_bn_act(x, 32, 8, k=1)
    y = g.conv_bn_act(y, 8, 8, k=3)
    y = g.conv_bn_act(y, 8, 32, k=1, act=None, gamma_scale=0.5)
    x = g.act(g.add(x, y), "relu")
    x = g.node("Flatten", [g.gap(x)], axis=1)
    return g.build(g.gemm_head(x, 32, classes), classes)


def _inverted_residual(g: _Graph, x: str, cin: int, cout: int, stride: int, t: int, pre_pad: bool = False) -> str:
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection, residual Add."""
    hidden = cin * t
    y = x
    if t != 1:
        y = g.conv_bn_act(y, cin, hidden, k=1, act="relu6", gain=1.0)
    if pre_pad:  # an explicit Pad node before the strided depthwise conv (TF-style "same")
        pads = g.const(g._name("pads"), np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))
        y = g.node("Pad", [y, pads], mode="constant")
        y = g.conv_bn_act(y, hidden, hidden, k=3, stride=stride, group=hidden, pad=0, act="relu6")
    else:
        y = g.conv_bn_act(y, hidden, hidden, k=3, stride=stride, group=hidden, act="relu6")
    y = g.conv_bn_act(y, hidden, cout, k=1, act=None, gamma_scale=0.7)
    if stride == 1 and cin == cout:
        y = g.add(x, y)
    return y


def mobilenetv2_tiny(seed: int = 0, size: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Pad + strided stem, inverted residuals with depthwise convs and ReLU6 (Clip), GAP, Reshape, Gemm."""
    g = _Graph("mobilenetv2_tiny", seed, size)
    pads = g.const("stem_pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))
    x = g.node("Pad", [INPUT, pads], mode="constant")
    x = g.conv_bn_act(x, 3, 16, k=3, stride=2, pad=0, act="relu6")
    x = _inverted_residual(g, x, 16, 8, 1, 1)
    x = _inverted_residual(g, x, 8, 8, 1, 4)
    x = _inverted_residual(g, x, 8, 16, 2, 4, pre_pad=True)
    x = _inverted_residual(g, x, 16, 16, 1, 4)
    x = g.conv_bn_act(x, 16, 64, k=1, act="relu6", gain=1.0)
    shape = g.const("head_shape", np.array([0, -1], np.int64))
    x = g.node("Reshape", [g.gap(x), shape])
    return g.build(g.gemm_head(x, 64, classes), classes)


def hardswish_se_tiny(seed: int = 0, size: int = 32, classes: int = 10) -> onnx.ModelProto:
    """MobileNetV3-style: HardSwish, squeeze-excite (HardSigmoid), AveragePool, MatMul+Add head, Softmax."""
    if size % 4:
        raise ConfigError(f"hardswish_se_tiny: size must be a multiple of 4, got {size}")
    g = _Graph("hardswish_se_tiny", seed, size)
    x = g.conv_bn_act(INPUT, 3, 16, k=3, stride=2, act="hardswish")
    y = g.conv_bn_act(x, 16, 48, k=1, act="hardswish", gain=1.0)
    y = g.conv_bn_act(y, 48, 48, k=3, group=48, act="hardswish")
    # squeeze-excite: the SE convs carry a bias and no BN, as in MobileNetV3
    s = g.gap(y)
    s = g.act(g.conv(s, 48, 12, k=1, bias=True), "relu")
    s = g.act(g.conv(s, 12, 48, k=1, bias=True, gain=1.0), "hardsigmoid")
    y = g.node("Mul", [y, s])
    y = g.conv_bn_act(y, 48, 16, k=1, act=None, gamma_scale=0.7)
    x = g.add(x, y)
    x = g.conv_bn_act(x, 16, 32, k=3, stride=2, act="hardswish", gain=1.0)
    k = size // 4
    x = g.node("AveragePool", [x], kernel_shape=[k, k], strides=[k, k])
    x = g.node("Flatten", [x], axis=1)
    w = g.const("head.weight", g.rng.normal(0.0, np.sqrt(1.0 / 32), (32, classes)).astype(np.float32))
    b = g.const("head.bias", g.rng.normal(0.0, 0.01, classes).astype(np.float32))
    x = g.node("Add", [g.node("MatMul", [x, w]), b])
    return g.build(g.node("Softmax", [x], OUTPUT, axis=1), classes)


def concat_tiny(seed: int = 0, size: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Inception-style branches (1x1, 3x3, dilated 3x3 as 5x5, maxpool) joined by Concat; Transpose pair."""
    g = _Graph("concat_tiny", seed, size)
    x = g.conv_bn_act(INPUT, 3, 16, k=3, stride=2)
    b1 = g.conv_bn_act(x, 16, 8, k=1)
    b2 = g.conv_bn_act(g.conv_bn_act(x, 16, 8, k=1), 8, 12, k=3, auto_pad="SAME_UPPER")
    b3 = g.conv_bn_act(g.conv_bn_act(x, 16, 4, k=1), 4, 8, k=3, dilation=2)
    b4 = g.conv_bn_act(g.maxpool(x, 3, 1, 1), 16, 8, k=1)
    x = g.node("Concat", [b1, b2, b3, b4], axis=1)
    x = g.node("Transpose", [x], perm=[0, 2, 3, 1])  # NCHW -> NHWC
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])  # and back
    x = g.conv_bn_act(x, 36, 32, k=1, act="sigmoid")
    x = g.conv_bn_act(x, 32, 32, k=3, stride=2, gain=1.0)
    x = g.node("Flatten", [g.gap(x)], axis=1)
    return g.build(g.gemm_head(x, 32, classes), classes)


# -- full-size models -----------------------------------------------------------------------------
def resnet50(seed: int = 0, classes: int = 1000, size: int = 224) -> onnx.ModelProto:
    """torchvision ResNet-50 (bottleneck v1.5: the stride sits in the 3x3 conv)."""
    g = _Graph("resnet50", seed, size)
    x = g.conv_bn_act(INPUT, 3, 64, k=7, stride=2, pad=3)
    x = g.maxpool(x)
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = g.conv_bn_act(x, cin, width, k=1)
            y = g.conv_bn_act(y, width, width, k=3, stride=s)
            y = g.conv_bn_act(y, width, width * 4, k=1, act=None, gamma_scale=0.3)
            shortcut = x
            if s != 1 or cin != width * 4:
                shortcut = g.conv_bn_act(x, cin, width * 4, k=1, stride=s, act=None, gain=1.0)
            x = g.act(g.add(y, shortcut), "relu")
            cin = width * 4
    x = g.node("Flatten", [g.gap(x)], axis=1)
    return g.build(g.gemm_head(x, 2048, classes), classes)


def mobilenet_v2(seed: int = 0, classes: int = 1000, size: int = 224) -> onnx.ModelProto:
    """torchvision MobileNetV2, width multiplier 1.0."""
    g = _Graph("mobilenet_v2", seed, size)
    x = g.conv_bn_act(INPUT, 3, 32, k=3, stride=2, act="relu6")
    cin = 32
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            x = _inverted_residual(g, x, cin, c, s if i == 0 else 1, t)
            cin = c
    x = g.conv_bn_act(x, cin, 1280, k=1, act="relu6", gain=1.0)
    x = g.node("Flatten", [g.gap(x)], axis=1)
    return g.build(g.gemm_head(x, 1280, classes), classes)


ZOO: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet_tiny": resnet_tiny,
    "mobilenetv2_tiny": mobilenetv2_tiny,
    "hardswish_se_tiny": hardswish_se_tiny,
    "concat_tiny": concat_tiny,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}


def build(name: str, **kw) -> onnx.ModelProto:
    """Build the zoo model `name`; keyword arguments go to its builder (seed, size, classes)."""
    try:
        builder = ZOO[name]
    except KeyError:
        raise ConfigError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}") from None
    logger.debug("building zoo model %s with %s", name, kw)
    return builder(**kw)


def save(name: str, path: str | Path, **kw) -> Path:
    """Build the zoo model `name` and write it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(name, **kw), str(path))
    return path
