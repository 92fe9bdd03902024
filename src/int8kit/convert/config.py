"""What `int8kit convert` is asked to do: a typed, frozen configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from int8kit import op_table
from int8kit.errors import ConfigError
from int8kit.scope import Scope

# The ONNX op types a conversion scope may name (the vocabulary of `int8kit quantize` too): the ops that
# have INT8 kernels. Conv covers depthwise convolutions ("Conv[depthwise]" names those alone); Gemm and
# MatMul become Dense, BatchNormalization an Affine, and answer to their ONNX names.
CONVERT_OP_TYPES: tuple[str, ...] = op_table.op_types(int8=True)


@dataclass(frozen=True)
class ConvertConfig:
    """scope: which nodes may run INT8 (ONNX op types, node names, the ids `--debug` draws); the rest stay FP32.

    quantize_float_weights: also run INT8 the Conv/Gemm/MatMul ops whose weights the QDQ file leaves in
    float (a QDQ tool's exclusion); off by default, since that overrides the file.
    bf16_nodes / bf16_op_ids: the Conv/Gemm/MatMul ops the QDQ model leaves float that run bf16 instead of
    FP32, by the QDQ model's node names or by the ids `--debug` draws (convert.mark_bf16).
    """

    scope: Scope = field(default_factory=Scope)
    debug_dir: Path | None = None
    quantize_float_weights: bool = False
    bf16_nodes: frozenset[str] = frozenset()
    bf16_op_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.bf16_nodes, str) or not all(isinstance(n, str) for n in self.bf16_nodes):
            raise ConfigError(f"bf16_nodes must be a set of node names, got {self.bf16_nodes!r}")
        object.__setattr__(self, "bf16_nodes", frozenset(self.bf16_nodes))
        object.__setattr__(self, "bf16_op_ids", tuple(int(i) for i in self.bf16_op_ids))
        if not isinstance(self.scope, Scope):
            raise ConfigError(f"scope must be an int8kit.scope.Scope, got {type(self.scope).__name__}")
        self.scope.check_supported(CONVERT_OP_TYPES, what="convert")
