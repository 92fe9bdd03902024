"""Where layers taken out of INT8 run: bf16 when this CPU has native bf16 kernels, else FP32.

Only convolutions and matrix products have bf16 kernels (convert.mark_bf16 refuses anything else), so a
fallback set at "bf16" runs its Conv/Dense layers bf16 and its data ops (Add, pools, Concat) in FP32.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from int8kit.convert.config import ConvertConfig
from int8kit.errors import ConfigError

logger = logging.getLogger(__name__)


def cpu_has_bf16() -> bool:
    from int8kit.runtime.precision import bf16_supported

    return bf16_supported()


def fallback_precisions(choice: str) -> tuple[str, ...]:
    """The precisions tried in order for the layers taken out of INT8."""
    if choice == "fp32":
        return ("fp32",)
    if cpu_has_bf16():
        return ("bf16", "fp32")
    if choice == "bf16":
        raise ConfigError("bf16 fallback unavailable: this CPU has no native bf16 kernels; use --fallback fp32")
    logger.info("no native bf16 kernels on this CPU: layers leaving INT8 run FP32")
    return ("fp32",)


def bf16_part(precision: str, names: tuple[str, ...], compute: Collection[str]) -> tuple[str, ...]:
    """The layers of a fallback set that run bf16: its convolutions and matrix products, when at bf16."""
    return tuple(n for n in names if n in compute) if precision == "bf16" else ()


def convert_config(precision: str, names: tuple[str, ...], compute: Collection[str]) -> ConvertConfig:
    """How to convert a QDQ model whose `names` were excluded from quantization, to run at `precision`."""
    return ConvertConfig(bf16_nodes=frozenset(bf16_part(precision, names, compute)))
