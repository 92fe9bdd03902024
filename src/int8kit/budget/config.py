"""What the accuracy budget is asked to do: a typed, frozen configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass

from int8kit.errors import ConfigError

FALLBACKS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class BudgetConfig:
    """max_drop: allowed top-1 loss in points; fallback: where layers taken out of INT8 run.

    "auto" runs them in bf16 when the CPU has bf16 kernels (and the converter can place bf16 layers), then
    in FP32 if bf16 cannot meet the budget; "fp32" skips bf16.
    """

    max_drop: float
    eval_samples: int = 2000
    compare_samples: int = 32
    batch_size: int = 50
    num_threads: int | None = None
    fallback: str = "auto"
    speed_seconds: float = 0.6  # timing per model for the closing speed line; 0 skips it

    def __post_init__(self) -> None:
        if not math.isfinite(self.max_drop):
            raise ConfigError(f"max accuracy drop must be a finite number of points, got {self.max_drop}")
        for name in ("eval_samples", "compare_samples", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"unknown fallback {self.fallback!r}; known: {', '.join(FALLBACKS)}")
        if self.speed_seconds < 0:
            raise ConfigError(f"speed_seconds must be >= 0, got {self.speed_seconds}")
