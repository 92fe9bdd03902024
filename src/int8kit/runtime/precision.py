"""Which float Conv/Dense run in bf16, and whether this CPU has oneDNN bf16 kernels at all.

bf16 keeps FP32's exponent range with an 8-bit mantissa: oneDNN's bf16 convolutions and inner products
read bf16 sources and weights, accumulate in f32 and add an f32 bias. They are native on CPUs with
avx512_bf16 (oneDNN ISA avx512_core_bf16) or AMX (avx512_core_amx); elsewhere oneDNN only emulates them,
slower than FP32, so int8kit then says so and runs FP32.

A float int8kit.Conv/Dense runs bf16 when its `precision` attribute is "bf16" (the converter marks
single layers) or when the Predictor's default precision is "bf16" (a whole FP32 model).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import onnx_ir as ir

from int8kit import ops
from int8kit.errors import ConfigError, UnsupportedOpError

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")
PRECISION_ATTR = "precision"
# oneDNN ISAs with native bf16 convolution / inner-product kernels (dnnl.ISA_NAMES spellings).
BF16_ISAS = ("avx512_core_bf16", "avx512_core_amx", "avx512_core_amx_fp16")
# oneDNN ISAs whose int8 convolutions and inner products compute exact s32 dot products (VNNI or AMX).
# Below them (avx2, avx512_core) oneDNN sums u8 x s8 pairs with vpmaddubsw into 16 bits, which saturates,
# and halves the weights of s8 sources: results off by up to 26 quantized steps were seen on an AVX2 EPYC.
EXACT_INT8_ISAS = ("avx2_vnni", "avx2_vnni_2", "avx512_core_vnni", *BF16_ISAS)
COMPUTE_OPS = ops.FUSED_COMPUTE_OPS

# Ops whose lowerings run in their input's data type, so bf16 data flows through them as it is (oneDNN has
# bf16 eltwise and pooling kernels; the shape ops are views or plain reorders). Every other op reads f32: the
# Builder converts a bf16 input for it once (see Builder.input).
BF16_PASSTHROUGH = frozenset(
    {
        ("", "Relu"),
        ("", "LeakyRelu"),
        ("", "Clip"),
        ("", "Sigmoid"),
        ("", "Tanh"),
        ("", "HardSwish"),
        ("", "HardSigmoid"),
        ("", "MaxPool"),
        ("", "AveragePool"),
        ("", "GlobalAveragePool"),
        ("", "GlobalMaxPool"),
        ("", "Flatten"),
        ("", "Reshape"),
        ("", "Squeeze"),
        ("", "Unsqueeze"),
        ("", "Identity"),
        ("", "Dropout"),
    }
)
# Ops that read only their input's dims, never its data.
SHAPE_READERS = frozenset({("", "Shape"), ("", "Size")})


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


@functools.cache
def bf16_supported() -> bool:
    """Whether oneDNN dispatches to an ISA with native bf16 kernels (ONEDNN_MAX_CPU_ISA can mask it)."""
    from int8kit.runtime import dnnl

    return dnnl.effective_isa() in BF16_ISAS


@functools.cache
def int8_kernels_exact() -> bool:
    """Whether oneDNN's int8 convolutions and inner products are exact here; where not, INT8 Conv and Dense
    run oneDNN's f32 kernels over the dequantized integers (lowering_compute), as the QDQ file computes."""
    from int8kit.runtime import dnnl

    isa = dnnl.effective_isa()
    if isa in EXACT_INT8_ISAS:
        return True
    logger.warning(
        "oneDNN dispatches up to %s (no VNNI or AMX), where its int8 convolutions and inner products saturate: "
        "INT8 Conv and Dense run f32 kernels over the dequantized values instead (the QDQ file's results, "
        "no INT8 speed-up)",
        isa,
    )
    return False


def is_compute(node: ir.Node) -> bool:
    return node.domain == ops.DOMAIN and node.op_type in COMPUTE_OPS


def node_attr(node: ir.Node) -> str | None:
    """The node's own `precision` attribute ("fp32"/"bf16"), or None; anything else is an error naming it."""
    attr = node.attributes.get(PRECISION_ATTR)
    if attr is None:
        return None
    value = attr.as_string()
    if value not in PRECISIONS:
        raise UnsupportedOpError(
            f"node {node.name!r} ({node.op_type}): precision {value!r} is not one of {', '.join(PRECISIONS)}"
        )
    return value


def has_bf16_nodes(graph: ir.Graph) -> bool:
    return any(is_compute(n) and node_attr(n) == "bf16" for n in graph)


@dataclass(frozen=True)
class PrecisionPlan:
    """default: the precision of float Conv/Dense without a `precision` attribute; node_attrs: honour those
    attributes (False on a CPU without bf16 kernels: everything float runs FP32)."""

    default: str = "fp32"
    node_attrs: bool = True

    def __post_init__(self) -> None:
        check_precision(self.default)

    def of(self, node: ir.Node) -> str:
        """The precision, bf16 or fp32, of a float Conv/Dense (INT8 nodes are not asked)."""
        own = node_attr(node)
        if own is not None and self.node_attrs:
            return own
        return self.default

    @staticmethod
    def resolve(precision: str, graph: ir.Graph) -> PrecisionPlan:
        """The plan for running `graph` at `precision` here: FP32, with a warning, when bf16 has no kernels."""
        check_precision(precision)
        wants_bf16 = precision == "bf16" or has_bf16_nodes(graph)
        if wants_bf16 and not bf16_supported():
            from int8kit.runtime import dnnl

            logger.warning(
                "this CPU has no native bf16 kernels (oneDNN dispatches up to %s; bf16 needs avx512_bf16 or "
                "AMX): running FP32 instead of bf16",
                dnnl.effective_isa(),
            )
            return PrecisionPlan("fp32", node_attrs=False)
        return PrecisionPlan(precision)
