"""What `int8kit convert` is asked to do: a typed, frozen configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from int8kit.errors import ConfigError

# User-facing op kinds for --ops-to-quantize, and the graph ops (after fusion) each covers.
OP_KINDS: dict[str, tuple[str, ...]] = {
    "conv": ("Conv",),
    "depthwise_conv": ("Conv",),
    "gemm": ("Dense",),
    "matmul": ("Dense",),
    "fc": ("Dense",),
    "maxpool": ("MaxPool",),
    "avgpool": ("AveragePool",),
    "globalavgpool": ("GlobalAveragePool",),
    "concat": ("Concat",),
    "reshape": ("Reshape", "Flatten", "Squeeze", "Unsqueeze"),
    "transpose": ("Transpose",),
    "split": ("Split", "Slice"),
    "add": ("Add",),
    "mul": ("Mul",),
    "affine": ("Affine",),
}


# The ONNX op types users name (the same vocabulary as `int8kit quantize --ops-to-quantize`), and the kinds
# each covers: Conv covers depthwise convolutions too; Gemm and MatMul become Dense after fusion.
ONNX_OP_KINDS: dict[str, tuple[str, ...]] = {
    "Conv": ("conv", "depthwise_conv"),
    "Gemm": ("gemm",),
    "MatMul": ("gemm",),
    "MaxPool": ("maxpool",),
    "AveragePool": ("avgpool",),
    "GlobalAveragePool": ("globalavgpool",),
    "Concat": ("concat",),
    "Reshape": ("reshape",),
    "Flatten": ("reshape",),
    "Squeeze": ("reshape",),
    "Unsqueeze": ("reshape",),
    "Transpose": ("transpose",),
    "Split": ("split",),
    "Slice": ("split",),
    "Add": ("add",),
    "Mul": ("mul",),
    "BatchNormalization": ("affine",),
}


@dataclass(frozen=True)
class ConvertConfig:
    """ops_to_quantize: OP_KINDS names (empty = all); op_ids_to_skip: node ids kept in FP32.

    quantize_float_weights: also run INT8 the Conv/Gemm/MatMul ops whose weights the QDQ file leaves in
    float (a QDQ tool's exclusion); off by default, since that overrides the file.
    bf16_nodes / bf16_op_ids: the Conv/Gemm/MatMul ops the QDQ model leaves float that run bf16 instead of
    FP32, by the QDQ model's node names or by the ids `--debug` draws (convert.mark_bf16).
    """

    ops_to_quantize: tuple[str, ...] = ()
    op_ids_to_skip: tuple[int, ...] = ()
    debug_dir: Path | None = None
    quantize_float_weights: bool = False
    bf16_nodes: frozenset[str] = frozenset()
    bf16_op_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.bf16_nodes, str) or not all(isinstance(n, str) for n in self.bf16_nodes):
            raise ConfigError(f"bf16_nodes must be a set of node names, got {self.bf16_nodes!r}")
        object.__setattr__(self, "bf16_nodes", frozenset(self.bf16_nodes))
        object.__setattr__(self, "bf16_op_ids", tuple(int(i) for i in self.bf16_op_ids))
        unknown = [k for k in self.ops_to_quantize if k not in OP_KINDS and k not in ONNX_OP_KINDS]
        if unknown:
            raise ConfigError(
                f"unknown op type(s) in ops_to_quantize: {', '.join(unknown)}; known: {', '.join(ONNX_OP_KINDS)} "
                f"(or the int8kit kinds {', '.join(OP_KINDS)})"
            )

    def quantizes(self, kind: str) -> bool:
        """Whether ops of `kind` may run INT8: ONNX op types expand to the kinds they cover."""
        if not self.ops_to_quantize:
            return True
        kinds = {k for name in self.ops_to_quantize for k in ONNX_OP_KINDS.get(name, (name,))}
        return kind in kinds
