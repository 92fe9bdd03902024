"""Where layers taken out of INT8 run: bf16 when the CPU and the converter can, else FP32.

HOOK: `ConvertConfig(bf16_nodes=...)` (names of float-left nodes the converter runs in bf16) is being added
to convert/config.py; until it exists, `bf16_placeable()` is False and the budget falls back to FP32 only.
"""

from __future__ import annotations

import dataclasses
import logging

from int8kit.convert.config import ConvertConfig
from int8kit.errors import ConfigError

logger = logging.getLogger(__name__)

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    from int8kit.runtime.dnnl import cpu_int8_features

    return any(f in cpu_int8_features() for f in BF16_FLAGS)


def bf16_placeable() -> bool:
    """Whether the converter can place single layers in bf16 (the ConvertConfig.bf16_nodes hook)."""
    return any(f.name == "bf16_nodes" for f in dataclasses.fields(ConvertConfig))


def fallback_precisions(choice: str) -> tuple[str, ...]:
    """The precisions tried in order for the layers taken out of INT8."""
    if choice == "fp32":
        return ("fp32",)
    ready = cpu_has_bf16() and bf16_placeable()
    if choice == "bf16" and not ready:
        why = "the CPU has no bf16 kernels" if not cpu_has_bf16() else "the converter cannot place bf16 layers yet"
        raise ConfigError(f"bf16 fallback unavailable: {why}; use fallback fp32")
    if not ready:
        logger.info("bf16 fallback unavailable (%s); layers fall back to FP32", _why_not())
        return ("fp32",)
    return ("bf16", "fp32")


def _why_not() -> str:
    return "no bf16 kernels on this CPU" if not cpu_has_bf16() else "converter has no bf16_nodes yet"


def convert_config(precision: str, names: tuple[str, ...]) -> ConvertConfig:
    """How to convert a QDQ model whose `names` were excluded from quantization, to run at `precision`."""
    if precision == "bf16" and names:
        return ConvertConfig(bf16_nodes=frozenset(names))  # type: ignore[call-arg]  (the hook above)
    return ConvertConfig()
