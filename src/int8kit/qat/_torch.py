"""torch is an optional extra: import it only when QAT runs, and say how to get it."""

from __future__ import annotations

from typing import Any

from int8kit.errors import ConfigError


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError("quant-aware training needs PyTorch: pip install torch") from None
    return torch
