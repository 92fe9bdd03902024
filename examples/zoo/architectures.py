"""torchvision's classification architectures, rewritten layer for layer with torch alone.

torchvision's PyPI wheel pairs with a CUDA torch and does not import beside the CPU torch, so the zoo carries
its own copies of the definitions (torchvision/models/*.py and ops/misc.py, `weights=None`). They keep
torchvision's module order, padding, pooling (ceil_mode), head (`torch.flatten(x, 1)`, `x.mean([2, 3])`),
activation modules and tensor operations (channel shuffle through view/transpose, `chunk`, `torch.cat`), so
`torch.onnx.export` writes the same graph ops it writes for torchvision's models: parameter counts equal
torchvision's published ones (tests/zoo checks them).

Weights are random: `randomize` draws He-normal convolutions (fan-in, so activations keep their scale through
the depth), random linear layers and biases, random BatchNorm affine parameters, and BatchNorm running
statistics that are *near but not equal to* each BN's real input statistics (see `randomize`), so BN folding
changes the weights and a forgotten BN shows up as wrong logits.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

NUM_CLASSES = 1000


# ---- shared blocks (torchvision/ops/misc.py, models/_utils.py) ------------------------------------------
def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round channels to a multiple of `divisor`, never more than 10% down (torchvision's rule)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvNormActivation(nn.Sequential):
    """Conv2d -> norm -> activation, padding (k - 1) // 2 * dilation, bias only without a norm layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=norm_layer is None,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Global pool -> 1x1 conv -> activation -> 1x1 conv -> scale activation -> multiply the input."""

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: Callable[..., nn.Module] = nn.ReLU,
        scale_activation: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.avgpool(x)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        scale = self.scale_activation(scale)
        return scale * x


# ---- ResNet / ResNeXt (torchvision/models/resnet.py) -------------------------------------------------------
def _conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=1, groups=groups, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, **_) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block: type, layers: Sequence[int], groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, NUM_CLASSES)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(self.inplanes, planes, stride, downsample, groups=self.groups, base_width=self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


# ---- MobileNetV2 (torchvision/models/mobilenetv2.py) --------------------------------------------------------
class InvertedResidualV2(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(inp, hidden_dim, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [
            ConvNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self) -> None:
        super().__init__()
        input_channel, self.last_channel = 32, 1280
        features: list[nn.Module] = [ConvNormActivation(3, input_channel, stride=2, activation_layer=nn.ReLU6)]
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidualV2(input_channel, c, s if i == 0 else 1, expand_ratio=t))
                input_channel = c
        features.append(ConvNormActivation(input_channel, self.last_channel, kernel_size=1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


# ---- MobileNetV3 (torchvision/models/mobilenetv3.py) --------------------------------------------------------
class InvertedResidualV3(nn.Module):
    def __init__(
        self,
        cin: int,
        kernel: int,
        expanded: int,
        cout: int,
        use_se: bool,
        activation: str,
        stride: int,
        norm_layer: Callable[..., nn.Module],
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        act = nn.Hardswish if activation == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvNormActivation(cin, expanded, 1, norm_layer=norm_layer, activation_layer=act))
        layers.append(
            ConvNormActivation(
                expanded, expanded, kernel, stride, expanded, norm_layer=norm_layer, activation_layer=act
            )
        )
        if use_se:
            squeeze = _make_divisible(expanded // 4, 8)
            layers.append(SqueezeExcitation(expanded, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(ConvNormActivation(expanded, cout, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


# (input channels, kernel, expanded channels, output channels, squeeze-excite, activation, stride)
MOBILENET_V3_LARGE = (
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
)
MOBILENET_V3_SMALL = (
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1),
    (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
)


class MobileNetV3(nn.Module):
    def __init__(self, setting: Sequence[tuple], last_channel: int) -> None:
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        first = setting[0][0]
        layers: list[nn.Module] = [
            ConvNormActivation(3, first, 3, 2, norm_layer=norm_layer, activation_layer=nn.Hardswish)
        ]
        layers += [InvertedResidualV3(*cnf, norm_layer=norm_layer) for cnf in setting]
        last_in = setting[-1][3]
        last_out = 6 * last_in
        layers.append(ConvNormActivation(last_in, last_out, 1, norm_layer=norm_layer, activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=0.2, inplace=True),
            nn.Linear(last_channel, NUM_CLASSES),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        x = torch.flatten(x, 1)
        return self.classifier(x)


# ---- EfficientNet-B0 (torchvision/models/efficientnet.py, MBConv) -------------------------------------------
class MBConv(nn.Module):
    def __init__(self, expand_ratio: float, kernel: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        expanded = _make_divisible(cin * expand_ratio, 8)
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvNormActivation(cin, expanded, 1, activation_layer=nn.SiLU))
        layers.append(ConvNormActivation(expanded, expanded, kernel, stride, expanded, activation_layer=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, cin // 4), activation=partial(nn.SiLU, inplace=True)))
        layers.append(ConvNormActivation(expanded, cout, 1, activation_layer=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:  # stochastic depth is the identity in eval mode
            result += x
        return result


# (expand ratio, kernel, stride, input channels, output channels, layers): width and depth multipliers 1.0
EFFICIENTNET_B0 = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


class EfficientNet(nn.Module):
    def __init__(self, setting: Sequence[tuple] = EFFICIENTNET_B0, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormActivation(3, setting[0][3], 3, 2, activation_layer=nn.SiLU)]
        for expand, kernel, stride, cin, cout, n in setting:
            stage = [MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout) for i in range(n)]
            layers.append(nn.Sequential(*stage))
        last_in = setting[-1][4]
        layers.append(ConvNormActivation(last_in, 4 * last_in, 1, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(4 * last_in, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        x = torch.flatten(x, 1)
        return self.classifier(x)


# ---- MnasNet 1.0 (torchvision/models/mnasnet.py) -------------------------------------------------------------
_MNAS_BN_MOMENTUM = 1 - 0.9997


class _MnasInvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.apply_residual = cin == cout and stride == 1
        bn = partial(nn.BatchNorm2d, momentum=_MNAS_BN_MOMENTUM)
        self.layers = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            bn(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel, padding=kernel // 2, stride=stride, groups=mid, bias=False),
            bn(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False),
            bn(cout),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.apply_residual:
            return self.layers(x) + x
        return self.layers(x)


def _mnas_stack(cin: int, cout: int, kernel: int, stride: int, expansion: int, repeats: int) -> nn.Sequential:
    first = _MnasInvertedResidual(cin, cout, kernel, stride, expansion)
    rest = [_MnasInvertedResidual(cout, cout, kernel, 1, expansion) for _ in range(1, repeats)]
    return nn.Sequential(first, *rest)


class MNASNet(nn.Module):
    DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)  # alpha 1.0

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        d = self.DEPTHS
        bn = partial(nn.BatchNorm2d, momentum=_MNAS_BN_MOMENTUM)
        self.layers = nn.Sequential(
            nn.Conv2d(3, d[0], 3, padding=1, stride=2, bias=False),
            bn(d[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(d[0], d[0], 3, padding=1, stride=1, groups=d[0], bias=False),
            bn(d[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(d[0], d[1], 1, padding=0, stride=1, bias=False),
            bn(d[1]),
            _mnas_stack(d[1], d[2], 3, 2, 3, 3),
            _mnas_stack(d[2], d[3], 5, 2, 3, 3),
            _mnas_stack(d[3], d[4], 5, 2, 6, 3),
            _mnas_stack(d[4], d[5], 3, 1, 6, 2),
            _mnas_stack(d[5], d[6], 5, 2, 6, 4),
            _mnas_stack(d[6], d[7], 3, 1, 6, 1),
            nn.Conv2d(d[7], 1280, 1, padding=0, stride=1, bias=False),
            bn(1280),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(1280, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        x = x.mean([2, 3])  # global average pool, exported as ReduceMean
        return self.classifier(x)


# ---- RegNetY-400MF (torchvision/models/regnet.py) ------------------------------------------------------------
class _RegNetBottleneck(nn.Sequential):
    """1x1, grouped 3x3, squeeze-excite (ratio to the block's input width), 1x1."""

    def __init__(self, w_in: int, w_out: int, stride: int, group_width: int, se_ratio: float) -> None:
        w_b = int(round(w_out * 1.0))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = ConvNormActivation(w_in, w_b, 1)
        layers["b"] = ConvNormActivation(w_b, w_b, 3, stride, groups=w_b // group_width)
        layers["se"] = SqueezeExcitation(w_b, int(round(se_ratio * w_in)), activation=nn.ReLU)
        layers["c"] = ConvNormActivation(w_b, w_out, 1, activation_layer=None)
        super().__init__(layers)


class _RegNetBlock(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int, group_width: int, se_ratio: float) -> None:
        super().__init__()
        self.proj = None
        if w_in != w_out or stride != 1:
            self.proj = ConvNormActivation(w_in, w_out, 1, stride, activation_layer=None)
        self.f = _RegNetBottleneck(w_in, w_out, stride, group_width, se_ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x) + self.f(x) if self.proj is not None else x + self.f(x)
        return self.activation(x)


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[tuple[int, int, int]]:
    """(width, depth, group width) per stage from RegNet's quantised linear width rule (BlockParams)."""
    widths_cont = torch.arange(depth) * w_a + w_0
    capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, capacity), 8)) * 8).int().tolist()
    splits = [w != wp for w, wp in zip(block_widths + [0], [0] + block_widths, strict=True)]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1], strict=True) if t]
    stage_depths = torch.diff(torch.tensor([d for d, t in enumerate(splits) if t])).int().tolist()
    stages = []
    for w, d in zip(stage_widths, stage_depths, strict=True):
        g = min(group_width, w)
        stages.append((_make_divisible(w, g), d, g))  # bottleneck multiplier 1.0
    return stages


class RegNet(nn.Module):
    def __init__(self, stages: Sequence[tuple[int, int, int]], se_ratio: float = 0.25, stem_width: int = 32) -> None:
        super().__init__()
        self.stem = ConvNormActivation(3, stem_width, 3, 2)
        blocks = []
        width = stem_width
        for i, (w_out, depth, group_width) in enumerate(stages):
            stage = nn.Sequential()
            for j in range(depth):
                block = _RegNetBlock(width if j == 0 else w_out, w_out, 2 if j == 0 else 1, group_width, se_ratio)
                stage.add_module(f"block{i + 1}-{j}", block)
            blocks.append((f"block{i + 1}", stage))
            width = w_out
        self.trunk_output = nn.Sequential(OrderedDict(blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.trunk_output(self.stem(x)))
        x = x.flatten(start_dim=1)
        return self.fc(x)


# ---- DenseNet-121 (torchvision/models/densenet.py) -----------------------------------------------------------
class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, stride=1, padding=1, bias=False)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        concatenated = torch.cat(inputs, 1)
        bottleneck = self.conv1(self.relu1(self.norm1(concatenated)))
        return self.conv2(self.relu2(self.norm2(bottleneck)))  # drop_rate 0: no dropout


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size)
            )

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, 1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(num_layers, num_features, bn_size, growth_rate))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                num_features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        out = nn.functional.relu(self.features(x), inplace=True)
        out = nn.functional.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        return self.classifier(out)


# ---- GoogLeNet (torchvision/models/googlenet.py; aux_logits=False, transform_input=False) ---------------------
class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(cin, ch3x3red, kernel_size=1), BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1)
        )
        # kernel_size=3 instead of 5 is torchvision's known, kept bug (pytorch/vision#906)
        self.branch3 = nn.Sequential(
            BasicConv2d(cin, ch5x5red, kernel_size=1), BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), BasicConv2d(cin, pool, kernel_size=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4d(self.inception4c(self.inception4b(self.inception4a(x))))
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


# ---- ShuffleNetV2 x1.0 (torchvision/models/shufflenetv2.py) --------------------------------------------------
def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleInvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, bias=False, groups=branch),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats: Sequence[int] = (4, 8, 4), channels: Sequence[int] = (24, 116, 232, 464, 1024)):
        super().__init__()
        cin = channels[0]
        self.conv1 = nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name, n, cout in zip(("stage2", "stage3", "stage4"), repeats, channels[1:], strict=False):
            seq = [ShuffleInvertedResidual(cin, cout, 2)] + [
                ShuffleInvertedResidual(cout, cout, 1) for _ in range(n - 1)
            ]
            setattr(self, name, nn.Sequential(*seq))
            cin = cout
        self.conv5 = nn.Sequential(
            nn.Conv2d(cin, channels[-1], 1, 1, 0, bias=False), nn.BatchNorm2d(channels[-1]), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(channels[-1], NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        x = x.mean([2, 3])  # global pool
        return self.fc(x)


# ---- SqueezeNet 1.1 (torchvision/models/squeezenet.py) -------------------------------------------------------
class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet(nn.Module):
    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        self.final_conv = nn.Conv2d(512, NUM_CLASSES, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), self.final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.classifier(self.features(x))
        return torch.flatten(x, 1)


# ---- random weights ------------------------------------------------------------------------------------------
CALIBRATION_SHAPE = (2, 3, 224, 224)  # the batch BN statistics are measured on, whatever the export size


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights that keep activations O(1) and make every BatchNorm matter.

    Convolutions: He-normal over fan-in (std sqrt(2 / fan_in)), biases N(0, 0.1). Linear layers: N(0, 1 / fan_in)
    weights, N(0, 0.01) biases. BatchNorm: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1); running statistics are set in one
    eval-mode forward pass over a fixed N(0, 1) batch, just before each BN runs, from the per-channel mean m and
    variance v of its actual input: running_mean = m + N(0, 0.1) * sqrt(v), running_var = v * U(0.5, 1.5). In units
    of the input's own scale these are the N(0, 0.1) means and U(0.5, 1.5) variances, so a deep network stays O(1)
    whatever its activations and residual sums do to absolute scales, and a wrongly folded BN is visible.
    """
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std: float) -> Tensor:
        return torch.randn(shape, generator=gen) * std

    def uniform(shape, low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(shape, generator=gen)

    norms = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(normal(m.weight.shape, math.sqrt(2.0 / fan_in)))
            if m.bias is not None:
                m.bias.copy_(normal(m.bias.shape, 0.1))
        elif isinstance(m, nn.Linear):
            m.weight.copy_(normal(m.weight.shape, math.sqrt(1.0 / m.in_features)))
            m.bias.copy_(normal(m.bias.shape, 0.01))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(uniform(m.weight.shape, 0.5, 1.5))
            m.bias.copy_(normal(m.bias.shape, 0.1))
            norms.append(m)

    def set_statistics(bn: nn.BatchNorm2d, args: tuple[Tensor, ...]) -> None:
        x = args[0]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-6)
        bn.running_mean.copy_(mean + normal(mean.shape, 0.1) * var.sqrt())
        bn.running_var.copy_(var * uniform(var.shape, 0.5, 1.5))

    model.eval()
    hooks = [bn.register_forward_pre_hook(set_statistics) for bn in norms]
    try:
        model(torch.randn(CALIBRATION_SHAPE, generator=gen))
    finally:
        for hook in hooks:
            hook.remove()
    return model


# ---- constructors ----------------------------------------------------------------------------------------------
def resnet18() -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2))


def resnet50() -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3))


def resnext50_32x4d() -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), groups=32, width_per_group=4)


def mobilenet_v2() -> nn.Module:
    return MobileNetV2()


def mobilenet_v3_large() -> nn.Module:
    return MobileNetV3(MOBILENET_V3_LARGE, last_channel=1280)


def mobilenet_v3_small() -> nn.Module:
    return MobileNetV3(MOBILENET_V3_SMALL, last_channel=1024)


def efficientnet_b0() -> nn.Module:
    return EfficientNet(EFFICIENTNET_B0, dropout=0.2)


def mnasnet1_0() -> nn.Module:
    return MNASNet()


def regnet_y_400mf() -> nn.Module:
    return RegNet(regnet_stages(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8), se_ratio=0.25)


def densenet121() -> nn.Module:
    return DenseNet(32, (6, 12, 24, 16), 64)


def googlenet() -> nn.Module:
    return GoogLeNet()


def shufflenet_v2_x1_0() -> nn.Module:
    return ShuffleNetV2((4, 8, 4), (24, 116, 232, 464, 1024))


def squeezenet1_1() -> nn.Module:
    return SqueezeNet()


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    f.__name__: f
    for f in (
        resnet18,
        resnet50,
        resnext50_32x4d,
        mobilenet_v2,
        mobilenet_v3_large,
        mobilenet_v3_small,
        efficientnet_b0,
        mnasnet1_0,
        regnet_y_400mf,
        densenet121,
        googlenet,
        shufflenet_v2_x1_0,
        squeezenet1_1,
    )
}
