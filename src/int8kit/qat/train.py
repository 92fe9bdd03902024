"""Fine-tune a QAT model: cross-entropy under fake-quant, Adam with a cosine decay, a fixed seed.

Weights (float, fake-quantized per channel in the forward pass) and activation log-scales are trained
together; BatchNorm is already folded, so what trains is exactly what the converter will run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from int8kit.errors import ConfigError
from int8kit.qat._torch import require_torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QatConfig:
    """How QAT fine-tunes; recorded in the exported model's metadata."""

    steps: int = 300
    batch_size: int = 128
    lr: float = 1e-4  # weights (Adam)
    scale_lr: float = 1e-3  # activation log-scales (Adam): relative change per step
    learn_scales: bool = True
    calib_samples: int = 512
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int | None = 2

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.calib_samples < 1:
            raise ConfigError("steps must be >= 0, batch size and calibration samples >= 1")
        if self.lr < 0 or self.scale_lr < 0:
            raise ConfigError(f"learning rates must be >= 0, got lr={self.lr}, scale_lr={self.scale_lr}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")


def finetune(
    module: Any,
    images: np.ndarray,
    labels: np.ndarray,
    config: QatConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train `module` in place for `config.steps` batches drawn (seeded) from the images; returns the losses."""
    torch = require_torch()
    if len(images) != len(labels):
        raise ConfigError(f"{len(images)} images but {len(labels)} labels")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    scales = [q.log_scale for q in module.act_quant]
    groups = [{"params": list(module.params), "lr": config.lr}]
    if config.learn_scales:
        groups.append({"params": scales, "lr": config.scale_lr})
    for p in scales:
        p.requires_grad_(config.learn_scales)
    opt = torch.optim.Adam(groups)
    base = [g["lr"] for g in opt.param_groups]
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    x_all, y_all = torch.from_numpy(np.asarray(images, np.float32)), torch.from_numpy(np.asarray(labels, np.int64))
    module.train()
    module.quantize = True
    losses: list[float] = []
    start = time.perf_counter()
    order = torch.randperm(len(x_all), generator=gen)
    cursor = 0
    for step in range(config.steps):
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(x_all), generator=gen), 0
        idx = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        decay = 0.5 * (1 + math.cos(math.pi * step / max(config.steps, 1)))
        for g, lr in zip(opt.param_groups, base, strict=True):
            g["lr"] = lr * decay
        loss = loss_fn(module(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    module.eval()
    logger.info("QAT: %d steps in %.0f s", config.steps, time.perf_counter() - start)
    return losses


def accuracy(module: Any, images: np.ndarray, labels: np.ndarray, quantize: bool = True, batch: int = 500) -> float:
    """Top-1 of the module (fake-quant on or off) on the images."""
    torch = require_torch()
    module.eval()
    previous, module.quantize = module.quantize, quantize
    correct = 0
    try:
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                logits = module(torch.from_numpy(np.ascontiguousarray(images[i : i + batch], np.float32)))
                correct += int((logits.argmax(1).numpy() == labels[i : i + batch]).sum())
    finally:
        module.quantize = previous
    return correct / max(len(images), 1)
