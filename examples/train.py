"""Train small real classifiers on Fashion-MNIST and export them to ONNX, so int8kit has honest models.

Two architectures cover what the converter must handle: `resnet` (conv+BN+ReLU, residual adds, a strided
1x1 shortcut) and `mobilenetv2` (inverted residuals: 1x1 expand + ReLU6, depthwise 3x3 + ReLU6, linear 1x1
project, residual adds). Both take the compact file's normalised input: 1x28x28, (x/255 - MEAN) / STD.
torch is an optional extra (`pip install torch`), imported only when a function here is called.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from examples import fashion_mnist
from int8kit.data.images import normalize
from int8kit.errors import ConfigError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Arch = Literal["resnet", "mobilenetv2"]
ARCHS: tuple[str, ...] = ("resnet", "mobilenetv2")
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def require_torch() -> Any:
    """Import torch or say how to install it."""
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "training and exporting the example models needs PyTorch: pip install 'int8kit[train]' "
            "(or pip install torch)"
        ) from None
    return torch


def build_model(arch: Arch, num_classes: int = 10, width: int = 1) -> torch.nn.Module:
    """An untrained model of the given architecture; `width` multiplies every channel count."""
    torch = require_torch()
    nn = torch.nn

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[Any]:
        conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        return [conv, nn.BatchNorm2d(cout)]

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), *conv_bn(cout, cout, 3))
            same = stride == 1 and cin == cout
            self.shortcut = nn.Identity() if same else nn.Sequential(*conv_bn(cin, cout, 1, stride))
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.body(x) + self.shortcut(x))

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            layers: list[Any] = []
            if expand != 1:
                layers += [*conv_bn(cin, hidden, 1), nn.ReLU6(inplace=True)]
            layers += [*conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(inplace=True)]
            layers += conv_bn(hidden, cout, 1)
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)
            return x + y if self.residual else y

    class Classifier(nn.Module):
        def __init__(self, features: nn.Module, channels: int) -> None:
            super().__init__()
            self.features = features
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    w = width
    if arch == "resnet":
        chans = [16 * w, 32 * w, 64 * w]
        layers: list[Any] = [*conv_bn(1, chans[0], 3), nn.ReLU(inplace=True)]
        cin = chans[0]
        for i, cout in enumerate(chans):
            layers += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        return Classifier(nn.Sequential(*layers), cin)
    if arch == "mobilenetv2":
        # (expand, channels, blocks, first stride), MobileNetV2's table shrunk for 28x28 inputs.
        table = [(1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 1), (4, 48, 2, 2), (4, 64, 1, 1)]
        layers = [*conv_bn(1, 16 * w, 3), nn.ReLU6(inplace=True)]
        cin = 16 * w
        for expand, c, n, s in table:
            for i in range(n):
                layers.append(InvertedResidual(cin, c * w, s if i == 0 else 1, expand))
                cin = c * w
        last = 128 * w
        layers += [*conv_bn(cin, last, 1), nn.ReLU6(inplace=True)]
        return Classifier(nn.Sequential(*layers), last)
    raise ConfigError(f"unknown architecture {arch!r} (one of {', '.join(ARCHS)})")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one example model. Defaults reach ~92% (resnet) / ~90% (mobilenetv2) on 2 cores."""

    arch: Arch = "resnet"
    epochs: int = 5
    seed: int = 0
    batch_size: int = 128
    max_lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    threads: int = 2
    width: int = 1
    channels_last: bool = False  # 2x faster depthwise training on CPU
    train_limit: int | None = None  # train on the first N images (tests, smoke runs)
    data_root: Path = fashion_mnist.DEFAULT_ROOT

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r} (one of {', '.join(ARCHS)})")
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 1 or self.width < 1:
            raise ConfigError("epochs, batch size, threads and width must be at least 1")


@dataclass(frozen=True)
class TrainResult:
    """What `train` measured: test top-1 of the torch model, wall time, parameter count."""

    model: Any
    test_top1: float
    train_seconds: float
    parameters: int


def _as_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> the compact reader's float32 (N, 1, 28, 28)."""
    return normalize(images[:, None], fashion_mnist.MEAN, fashion_mnist.STD)


def _augment(torch: Any, x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to `pad` pixels per image (zero-filled, in input units)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    background = float(-fashion_mnist.MEAN[0] / fashion_mnist.STD[0])
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=background)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def evaluate(model: Any, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy of a torch model on uint8 images."""
    torch = require_torch()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            logits = model(torch.from_numpy(_as_input(images[i : i + batch])))
            correct += int((logits.argmax(1).numpy() == labels[i : i + batch]).sum())
    return correct / len(images)


def train(config: TrainConfig) -> TrainResult:
    """Train with SGD + OneCycle from a fixed seed; returns the model in eval mode and its test top-1."""
    torch = require_torch()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    train_x, train_y = fashion_mnist.load_split("train", config.data_root)
    test_x, test_y = fashion_mnist.load_split("test", config.data_root)
    if config.train_limit is not None:
        train_x, train_y = train_x[: config.train_limit], train_y[: config.train_limit]
    x_all = torch.from_numpy(_as_input(train_x))
    y_all = torch.from_numpy(train_y)
    model = build_model(config.arch, width=config.width)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    steps = math.ceil(len(x_all) / config.batch_size)
    opt = torch.optim.SGD(
        model.parameters(), lr=config.max_lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.max_lr, epochs=config.epochs, steps_per_epoch=steps, pct_start=0.25
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(steps):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = _augment(torch, x_all[idx], gen).contiguous(memory_format=memory_format)
            loss = loss_fn(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        logger.info(
            "%s epoch %d/%d: loss %.4f, %.0f s",
            config.arch,
            epoch + 1,
            config.epochs,
            total / len(x_all),
            time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    model = model.to(memory_format=torch.contiguous_format)
    top1 = evaluate(model, test_x, test_y)
    params = sum(p.numel() for p in model.parameters())
    logger.info("%s: test top-1 %.4f after %.0f s (%d parameters)", config.arch, top1, seconds, params)
    return TrainResult(model=model.eval(), test_top1=top1, train_seconds=seconds, parameters=params)


@contextmanager
def legacy_exporter() -> Iterator[None]:
    """Silence torch's deprecation notes about the TorchScript exporter (the dynamo one needs onnxscript)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def export_onnx(model: Any, path: str | Path, size: int = 28, channels: int = 1) -> Path:
    """Export a model in eval mode to ONNX opset 17: input "input" [N,channels,size,size], output "logits"."""
    torch = require_torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    dummy = torch.zeros(1, channels, size, size)
    # The TorchScript exporter (dynamo=False) needs no onnxscript and writes one self-contained file.
    with torch.no_grad(), legacy_exporter():
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            do_constant_folding=True,
            dynamo=False,
        )
    return path


# The recipes behind examples/models: 4 epochs each, about 10 minutes on one or two cores.
RECIPES: dict[str, TrainConfig] = {
    "resnet": TrainConfig(arch="resnet", epochs=4),
    "mobilenetv2": TrainConfig(arch="mobilenetv2", epochs=4, channels_last=True),
}


def recipe(arch: Arch, epochs: int | None = None, seed: int = 0, threads: int | None = None) -> TrainConfig:
    """The default recipe of one architecture, with the given overrides."""
    if arch not in RECIPES:
        raise ConfigError(f"unknown architecture {arch!r} (one of {', '.join(ARCHS)})")
    base = RECIPES[arch]
    return replace(
        base,
        epochs=base.epochs if epochs is None else epochs,
        seed=seed,
        threads=base.threads if threads is None else threads,
    )


def train_and_export(arch: Arch, out_dir: str | Path, epochs: int | None = None, seed: int = 0) -> Path:
    """Train one example model with its recipe and write `<out_dir>/fashion_mnist_<arch>.onnx`."""
    result = train(recipe(arch, epochs, seed))
    return export_onnx(result.model, Path(out_dir) / f"fashion_mnist_{arch}.onnx")
