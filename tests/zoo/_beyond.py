"""Architectures beyond issue 8's zoo, as users bring them: the blocks the zoo does not have (GhostNet's
cheap-operation concat and slice, ResNeSt's split attention with its softmax over the radix, BiT's
GroupNorm pre-activation, Inception-v3's factorised 1x7 / 7x1 and 1x3 / 3x1 convolutions, EfficientNetV2's
fused MBConv, MobileNetV1, RegNetX without squeeze-excite, Xception's separable convs with no BN between
depthwise and pointwise, NASNet's cells (average pools excluding their padding, branch adds, concat),
DPN's dual path (a channel slice added, the rest concatenated), ResNet-D's shortcut (a ceil-mode 2x2
average before the 1x1 conv), ECA's Conv1d and CBAM's channel max/mean attention, HRNet's exchange of
resolutions by Resize, RepVGG's lone identity BN, the CIFAR ResNet's sliced and channel-padded shortcut
with a LogSoftmax head, and one conv per activation a CNN might use: LeakyReLU, PReLU, ELU, Mish,
Softplus, Hardtanh, GELU, SiLU, Tanh, Sigmoid, ReLU6, HardSwish, HardSigmoid, CELU, SELU). Small
versions with torchvision-style layers, random weights (architectures.randomize).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from examples.zoo import architectures as A
from examples.zoo import export as zoo_export


def cbr(cin, cout, k=3, s=1, p=None, g=1, act=nn.ReLU):
    p = (k - 1) // 2 if p is None else p
    layers = [nn.Conv2d(cin, cout, k, s, p, groups=g, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish) else act())
    return nn.Sequential(*layers)


class BasicConv(nn.Sequential):
    def __init__(self, cin, cout, **kw):
        super().__init__(nn.Conv2d(cin, cout, bias=False, **kw), nn.BatchNorm2d(cout, eps=0.001), nn.ReLU(True))


class InceptionA(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.b1 = BasicConv(cin, 64, kernel_size=1)
        self.b5 = nn.Sequential(BasicConv(cin, 48, kernel_size=1), BasicConv(48, 64, kernel_size=5, padding=2))
        self.b3 = nn.Sequential(
            BasicConv(cin, 64, kernel_size=1),
            BasicConv(64, 96, kernel_size=3, padding=1),
            BasicConv(96, 96, kernel_size=3, padding=1),
        )
        self.bp = BasicConv(cin, pool, kernel_size=1)

    def forward(self, x):
        p = self.bp(F.avg_pool2d(x, 3, 1, 1))
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), p], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.b3 = BasicConv(cin, 384, kernel_size=3, stride=2)
        self.bd = nn.Sequential(
            BasicConv(cin, 64, kernel_size=1),
            BasicConv(64, 96, kernel_size=3, padding=1),
            BasicConv(96, 96, kernel_size=3, stride=2),
        )

    def forward(self, x):
        return torch.cat([self.b3(x), self.bd(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.b1 = BasicConv(cin, 192, kernel_size=1)
        self.b7 = nn.Sequential(
            BasicConv(cin, c7, kernel_size=1),
            BasicConv(c7, c7, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv(c7, 192, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.bp = BasicConv(cin, 192, kernel_size=1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b7(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionE(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.b1 = BasicConv(cin, 320, kernel_size=1)
        self.b3 = BasicConv(cin, 384, kernel_size=1)
        self.b3a = BasicConv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.b3b = BasicConv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.bp = BasicConv(cin, 192, kernel_size=1)

    def forward(self, x):
        y = self.b3(x)
        y = torch.cat([self.b3a(y), self.b3b(y)], 1)
        return torch.cat([self.b1(x), y, self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionV3Like(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            BasicConv(3, 32, kernel_size=3, stride=2),
            BasicConv(32, 32, kernel_size=3),
            BasicConv(32, 64, kernel_size=3, padding=1),
            nn.MaxPool2d(3, 2),
            BasicConv(64, 80, kernel_size=1),
            BasicConv(80, 192, kernel_size=3),
            nn.MaxPool2d(3, 2),
        )
        self.a = nn.Sequential(InceptionA(192, 32), InceptionA(256, 64))
        self.b = InceptionB(288)
        self.c = InceptionC(768, 128)
        self.e = InceptionE(576)
        self.fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = self.e(self.c(self.b(self.a(self.stem(x)))))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(F.dropout(torch.flatten(x, 1), training=False))


class MobileNetV1(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        cfg = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]
        c = int(32 * width)
        layers = [cbr(3, c, s=2)]
        for v in cfg:
            out, s = v if isinstance(v, tuple) else (v, 1)
            out = int(out * width)
            layers += [cbr(c, c, s=s, g=c), cbr(c, out, k=1)]
            c = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, 1000)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def hard_sigmoid(x):
    return F.relu6(x + 3.0) / 6.0


class GhostModule(nn.Module):
    def __init__(self, cin, oup, relu=True):
        super().__init__()
        self.oup = oup
        init = (oup + 1) // 2
        self.primary = cbr(cin, init, k=1, act=nn.ReLU if relu else None)
        self.cheap = cbr(init, init, k=3, g=init, act=nn.ReLU if relu else None)

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], 1)[:, : self.oup]


class GhostSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        r = A._make_divisible(c * 0.25, 4)
        self.reduce = nn.Conv2d(c, r, 1)
        self.expand = nn.Conv2d(r, c, 1)

    def forward(self, x):
        s = self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * hard_sigmoid(s)


class GhostBottleneck(nn.Module):
    def __init__(self, cin, mid, out, k, s, se):
        super().__init__()
        self.g1 = GhostModule(cin, mid)
        self.dw = cbr(mid, mid, k=k, s=s, g=mid, act=None) if s > 1 else nn.Identity()
        self.se = GhostSE(mid) if se else nn.Identity()
        self.g2 = GhostModule(mid, out, relu=False)
        if cin == out and s == 1:
            self.short = nn.Identity()
        else:
            self.short = nn.Sequential(cbr(cin, cin, k=k, s=s, g=cin, act=None), cbr(cin, out, k=1, act=None))

    def forward(self, x):
        return self.g2(self.se(self.dw(self.g1(x)))) + self.short(x)


class GhostNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        cfg = [
            (3, 16, 16, 0, 1),
            (3, 48, 24, 0, 2),
            (3, 72, 24, 0, 1),
            (5, 72, 40, 1, 2),
            (5, 120, 40, 1, 1),
            (3, 240, 80, 0, 2),
            (3, 200, 80, 0, 1),
            (3, 480, 112, 1, 1),
            (5, 672, 160, 1, 2),
            (5, 960, 160, 1, 1),
        ]
        self.stem = cbr(3, 16, s=2)
        layers, c = [], 16
        for k, mid, out, se, s in cfg:
            layers.append(GhostBottleneck(c, mid, out, k, s, se))
            c = out
        self.blocks = nn.Sequential(*layers, cbr(c, 960, k=1))
        self.head = nn.Conv2d(960, 1280, 1)
        self.fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1)
        x = F.relu(self.head(x))
        return self.fc(torch.flatten(x, 1))


class ActivationsNet(nn.Module):
    """One conv per activation a user's CNN might carry."""

    def __init__(self):
        super().__init__()
        acts = [
            nn.LeakyReLU(0.1),
            nn.PReLU(32),
            nn.ELU(),
            nn.Mish(),
            nn.Softplus(),
            nn.Hardtanh(-2, 2),
            nn.GELU(),
            nn.SiLU(),
            nn.Tanh(),
            nn.Sigmoid(),
            nn.ReLU6(),
            nn.Hardswish(),
            nn.Hardsigmoid(),
            nn.CELU(),
            nn.SELU(),
        ]
        self.stem = cbr(3, 32, s=2)
        self.body = nn.Sequential(
            *[nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), a) for a in acts]
        )
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.body(self.stem(x)).mean((2, 3)))


class GroupNormBlock(nn.Module):
    """BiT-style pre-activation bottleneck with GroupNorm."""

    def __init__(self, cin, mid, out, s):
        super().__init__()
        self.gn1 = nn.GroupNorm(32, cin)
        self.c1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.gn2 = nn.GroupNorm(32, mid)
        self.c2 = nn.Conv2d(mid, mid, 3, s, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, mid)
        self.c3 = nn.Conv2d(mid, out, 1, bias=False)
        self.down = nn.Conv2d(cin, out, 1, s, bias=False) if (s > 1 or cin != out) else None

    def forward(self, x):
        a = F.relu(self.gn1(x))
        short = self.down(a) if self.down is not None else x
        y = self.c1(a)
        y = self.c2(F.relu(self.gn2(y)))
        y = self.c3(F.relu(self.gn3(y)))
        return y + short


class GroupNormResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.ConstantPad2d(1, 0), nn.MaxPool2d(3, 2))
        self.body = nn.Sequential(
            GroupNormBlock(64, 64, 256, 1),
            GroupNormBlock(256, 64, 256, 1),
            GroupNormBlock(256, 128, 512, 2),
            GroupNormBlock(512, 128, 512, 1),
        )
        self.gn = nn.GroupNorm(32, 512)
        self.head = nn.Conv2d(512, 1000, 1)

    def forward(self, x):
        x = F.relu(self.gn(self.body(self.stem(x))))
        return torch.flatten(self.head(F.adaptive_avg_pool2d(x, 1)), 1)


class SplitAttn(nn.Module):
    """ResNeSt's split attention (radix 2, cardinality 1), with its rSoftMax."""

    def __init__(self, c, radix=2):
        super().__init__()
        self.radix = radix
        self.conv = nn.Conv2d(c, c * radix, 3, 1, 1, groups=radix, bias=False)
        self.bn = nn.BatchNorm2d(c * radix)
        inter = max(c * radix // 4, 32)
        self.fc1 = nn.Conv2d(c, inter, 1)
        self.bn1 = nn.BatchNorm2d(inter)
        self.fc2 = nn.Conv2d(inter, c * radix, 1)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        b, rc = x.shape[:2]
        splits = torch.split(x, rc // self.radix, dim=1)
        gap = F.adaptive_avg_pool2d(sum(splits), 1)
        att = self.fc2(F.relu(self.bn1(self.fc1(gap))))
        att = att.view(b, 1, self.radix, -1).transpose(1, 2)
        att = F.softmax(att, dim=1).reshape(b, -1, 1, 1)
        atts = torch.split(att, rc // self.radix, dim=1)
        return sum(a * s for a, s in zip(atts, splits, strict=True))


class ResNeStLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            cbr(3, 32, s=2), cbr(32, 64), nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        )
        blocks = []
        for c in (64, 64, 128):
            blocks.append(nn.Sequential(cbr(64 if c == 64 else 64, c, k=1), SplitAttn(c), cbr(c, 64, k=1, act=None)))
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(64, 1000)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = F.relu(x + b(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class FusedMBConv(nn.Module):
    def __init__(self, cin, cout, s, e):
        super().__init__()
        mid = cin * e
        self.use_res = s == 1 and cin == cout
        if e == 1:
            self.block = cbr(cin, cout, s=s, act=nn.SiLU)
        else:
            self.block = nn.Sequential(cbr(cin, mid, s=s, act=nn.SiLU), cbr(mid, cout, k=1, act=None))

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class EfficientNetV2Like(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 24, s=2, act=nn.SiLU)
        layers = [
            FusedMBConv(24, 24, 1, 1),
            FusedMBConv(24, 24, 1, 1),
            FusedMBConv(24, 48, 2, 4),
            FusedMBConv(48, 48, 1, 4),
            FusedMBConv(48, 64, 2, 4),
            FusedMBConv(64, 64, 1, 4),
        ]
        mb = A.MBConv
        self.fused = nn.Sequential(*layers)
        self.mb = nn.Sequential(mb(4, 3, 2, 64, 128), mb(4, 3, 1, 128, 128), mb(6, 3, 2, 128, 160))
        self.head = cbr(160, 1280, k=1, act=nn.SiLU)
        self.fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = self.head(self.mb(self.fused(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def regnet_x_400mf() -> nn.Module:
    model = A.RegNet(A.regnet_stages(22, 24, 24.48, 2.54, 16), se_ratio=0.25)
    for module in model.modules():
        if isinstance(module, A._RegNetBottleneck) and "se" in module._modules:
            module._modules["se"] = nn.Identity()
    return model


class SeparableConv(nn.Module):
    """Keras' SeparableConv2D as Xception uses it: depthwise then pointwise, one BN after both."""

    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, k, 1, k // 2, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.pw(self.dw(x)))


class XceptionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.s1, self.s2 = SeparableConv(cin, cout), SeparableConv(cout, cout)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return self.pool(self.s2(F.relu(self.s1(F.relu(x))))) + self.skip(x)


class XceptionLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(cbr(3, 32, s=2), cbr(32, 64))
        self.blocks = nn.Sequential(XceptionBlock(64, 128), XceptionBlock(128, 256))
        self.fc = nn.Linear(256, 1000)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.blocks(self.stem(x))), 1).flatten(1))


class NASNetCell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = nn.Sequential(nn.ReLU(), SeparableConv(c, c, 5))
        self.b = nn.Sequential(nn.ReLU(), SeparableConv(c, c, 3))
        self.avg = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.max = nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return torch.cat([self.a(x) + self.b(x), self.avg(x) + x, self.max(x) + self.b(x), x], 1)


class NASNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 32, s=2)
        self.cell1, self.reduce, self.cell2 = NASNetCell(32), cbr(128, 64, k=1), NASNetCell(64)
        self.fc = nn.Linear(256, 1000)

    def forward(self, x):
        x = self.cell2(self.reduce(self.cell1(self.stem(x))))
        return self.fc(F.relu(x).mean((2, 3)))


class DualPathBlock(nn.Module):
    def __init__(self, cin, residual, dense):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(cbr(cin, 64, k=1), cbr(64, 64, g=8), nn.Conv2d(64, residual + dense, 1, bias=False))

    def forward(self, x):
        y, r = self.body(x), self.residual
        return torch.cat([x[:, :r] + y[:, :r], x[:, r:], y[:, r:]], 1)


class DPNLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 96, s=2)
        self.blocks = nn.Sequential(DualPathBlock(96, 64, 16), DualPathBlock(112, 64, 16), DualPathBlock(128, 64, 16))
        self.fc = nn.Linear(144, 1000)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.blocks(self.stem(x))), 1).flatten(1))


class ResNetDBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(cbr(cin, cout, s=2), cbr(cout, cout, act=None))
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNetD(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(cbr(3, 32, s=2), cbr(32, 32), cbr(32, 64))
        self.blocks = nn.Sequential(ResNetDBlock(64, 128), ResNetDBlock(128, 256))
        self.fc = nn.Linear(256, 1000)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


class ECA(nn.Module):
    """ECA-Net's channel attention: a Conv1d over the pooled channel vector."""

    def __init__(self, k=3):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        y = self.conv(F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2))
        return x * torch.sigmoid(y.transpose(-1, -2).unsqueeze(-1))


class CBAM(nn.Module):
    """CBAM: channel attention from average and max pools through one MLP, then spatial attention from the
    mean and max over channels through a 7x7 conv."""

    def __init__(self, c, r=4):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(c, c // r, 1), nn.ReLU(), nn.Conv2d(c // r, c, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        x = x * torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(s))


class AttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(cbr(3, 32, 3, 2), ECA(), cbr(32, 64, 3, 2), CBAM(64), cbr(64, 64))
        self.fc = nn.Linear(64, 1000)

    def forward(self, x):
        return self.fc(self.f(x).mean((2, 3)))


class HRNetLike(nn.Module):
    """Two resolutions exchanged by a strided conv and upsampling (nearest by 2; bilinear to the other branch's
    shape, which exports a Shape -> Slice -> Concat subgraph as Resize's sizes)."""

    def __init__(self):
        super().__init__()
        self.stem, self.down = cbr(3, 32, 3, 2), cbr(32, 64, 3, 2)
        self.hi, self.lo = cbr(32, 32), cbr(64, 64)
        self.lo2hi, self.hi2lo = cbr(64, 32, 1, act=None), cbr(32, 64, 3, 2, act=None)
        self.fc = nn.Linear(96, 1000)

    def forward(self, x):
        h = self.stem(x)
        lo, hi = self.lo(self.down(h)), self.hi(h)
        hi2 = F.relu(hi + F.interpolate(self.lo2hi(lo), scale_factor=2, mode="nearest"))
        lo2 = F.relu(lo + self.hi2lo(hi))
        up = F.interpolate(lo2, size=hi2.shape[-2:], mode="bilinear", align_corners=False)
        return self.fc(torch.cat([hi2, up], 1).mean((2, 3)))


class RepVGGBlock(nn.Module):
    """RepVGG as trained: 3x3 conv + BN, 1x1 conv + BN and a lone BN on the identity, summed."""

    def __init__(self, c):
        super().__init__()
        self.k3, self.k1, self.id = cbr(c, c, act=None), cbr(c, c, 1, act=None), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.k3(x) + self.k1(x) + self.id(x))


class RepVGGLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(cbr(3, 48, 3, 2), RepVGGBlock(48), RepVGGBlock(48), cbr(48, 96, 3, 2), RepVGGBlock(96))
        self.fc = nn.Linear(96, 1000)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.f(x), 1).flatten(1))


class CifarResNetA(nn.Module):
    """The CIFAR ResNet's option-A shortcut (a stride-2 slice, zero-padded channels) and a LogSoftmax head."""

    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 16)
        self.b1 = nn.Sequential(cbr(16, 16), cbr(16, 16, act=None))
        self.b2 = nn.Sequential(cbr(16, 32, s=2), cbr(32, 32, act=None))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(self.b1(x) + x)
        x = F.relu(self.b2(x) + F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8)))
        return F.log_softmax(self.fc(F.avg_pool2d(x, x.shape[-1]).view(x.size(0), -1)), 1)


# name -> (constructor, input size)
MODELS = {
    "mobilenet_v1": (MobileNetV1, 64),
    "ghostnet_like": (GhostNetLike, 64),
    "resnest_like": (ResNeStLike, 64),
    "groupnorm_resnet": (GroupNormResNet, 64),
    "activations": (ActivationsNet, 32),
    "inception_v3_like": (InceptionV3Like, 96),
    "efficientnet_v2_like": (EfficientNetV2Like, 64),
    "regnet_x_400mf": (regnet_x_400mf, 64),
    "xception_like": (XceptionLike, 64),
    "nasnet_like": (NASNetLike, 48),
    "dpn_like": (DPNLike, 48),
    "resnet_d": (ResNetD, 75),  # odd sizes: the ceil-mode pools' last windows overhang
    "attention_net": (AttentionNet, 64),
    "hrnet_like": (HRNetLike, 64),
    "repvgg_like": (RepVGGLike, 64),
    "cifar_resnet_a": (CifarResNetA, 32),
}

# onnxruntime's quant_pre_process fails on these (its symbolic shape inference stops at Resize's computed
# sizes): their onnxruntime QDQ files are made without it, as a user then does.
NO_ORT_PRE_PROCESS = frozenset({"hrnet_like"})


def onnx_path(name: str) -> Path:
    """The model exported as the zoo's are (examples.zoo.export), cached beside them by definition hash."""
    ctor, size = MODELS[name]
    digest = hashlib.sha256(Path(__file__).read_bytes() + zoo_export.definition_hash().encode()).hexdigest()[:12]
    path = zoo_export.cache_dir() / "beyond" / f"{name}-{size}-{digest}.onnx"
    if path.exists():
        return path
    with torch.no_grad():  # BN statistics measured at 224 x 224, as for the zoo
        model = A.randomize(ctor(), zoo_export.seed(name)).eval()
    zoo_export.write_onnx(model, size, path)
    return path
