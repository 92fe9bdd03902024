"""The op -> lowering table: which function turns a node of each (domain, op type) into primitives.

The lowering modules (lowering_compute, _layout, _pointwise, _shape) register into it with @lowering;
runtime.lowering imports them all and dispatches. Kept apart from the Builder (runtime.compile) so the
lowerings depend on the Builder and the dispatcher on both, with no import going back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import onnx_ir as ir

if TYPE_CHECKING:
    from int8kit.runtime.compile import Builder

Lowering = Callable[["Builder", ir.Node], None]
LOWERINGS: dict[tuple[str, str], Lowering] = {}


def lowering(*op_types: str, domain: str = "") -> Callable[[Lowering], Lowering]:
    """Register a function that turns one node into primitives."""

    def register(fn: Lowering) -> Lowering:
        for op in op_types:
            LOWERINGS[(domain, op)] = fn
        return fn

    return register
