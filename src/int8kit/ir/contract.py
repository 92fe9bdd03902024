"""Passes that state which int8kit metadata they read and write, checked by onnx_ir's pass machinery.

onnx_ir calls a pass's `requires` before it runs and `ensures` after: a ContractPass checks in
`requires` that an earlier pass declared writing every key it reads (or, for a model that arrives with
them, that the model carries the key), and records in `ensures` the keys it wrote (in model.meta, never
saved). A pipeline listed in the wrong order so fails before the reader
runs, naming the pass, the key and who writes it, instead of silently finding no metadata.
"""

from __future__ import annotations

from typing import ClassVar

import onnx_ir as ir

from int8kit.metadata import WRITTEN_KEY


def written_keys(model: ir.Model) -> set[str]:
    """The keys the passes run so far on `model` declared they wrote."""
    return set(model.meta.get(WRITTEN_KEY, ()))


def present_keys(model: ir.Model) -> set[str]:
    """The int8kit keys the model already carries on its nodes and values (a model read from a file)."""
    found: set[str] = set()
    for node in model.graph:
        found.update(node.metadata_props)
        for value in node.outputs:
            found.update(value.metadata_props)
            found.update(value.meta)
        for value in node.inputs:
            if value is not None:
                found.update(value.metadata_props)
                found.update(value.meta)
    return found


def record_written(model: ir.Model, keys: tuple[str, ...] | list[str]) -> None:
    model.meta[WRITTEN_KEY] = frozenset(written_keys(model) | set(keys))


class ContractPass(ir.passes.InPlacePass):
    """An in-place pass with `reads` (keys an earlier pass must write) and `writes` (keys it provides)."""

    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()

    def requires(self, model: ir.Model) -> None:
        missing = [key for key in self.reads if key not in written_keys(model)]
        if missing:
            missing = [key for key in missing if key not in present_keys(model)]
        if missing:
            raise ir.passes.PreconditionError(
                f"pass {type(self).__name__} reads {', '.join(missing)}, which no earlier pass wrote "
                "(the pipeline is out of order: run the pass that writes it first)"
            )

    def ensures(self, model: ir.Model) -> None:
        record_written(model, self.writes)
