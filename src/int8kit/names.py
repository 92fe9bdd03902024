"""Fresh, unique names for values and nodes: shared by the graph passes (int8kit.ir) and the Paddle reader,
which builds graphs before there is an onnx_ir model to ask."""

from __future__ import annotations


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`... whichever is free; records it in `taken`."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name
