"""A Paddle program as plain data: variables, ops with named input/output slots, decoded attributes.

The reader's later steps (fake-quant folding, op translation) work on this form, not on protobuf messages,
so a second program format (Paddle 3's PIR .json) only needs its own parser into the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from int8kit.errors import ModelError
from int8kit.paddle.proto import DENSE_TENSOR, DTYPES, FEED_MINIBATCH, FETCH_LIST, messages


@dataclass(frozen=True)
class Var:
    name: str
    dtype: str | None  # numpy dtype name; None for non-tensor variables (feed/fetch lists)
    shape: tuple[int, ...] | None  # -1 for an unknown dimension
    persistable: bool


@dataclass
class Op:
    type: str
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]]
    attrs: dict[str, Any] = field(default_factory=dict)
    index: int = -1  # position in the program's op list, for messages

    def input(self, slot: str) -> str | None:
        names = self.inputs.get(slot) or []
        return names[0] if names else None

    def output(self, slot: str) -> str | None:
        names = self.outputs.get(slot) or []
        return names[0] if names else None

    def main_output(self) -> str | None:
        for slot in ("Out", "Output", "Y"):
            if self.output(slot):
                return self.output(slot)
        names = [n for names in self.outputs.values() for n in names]
        return names[0] if names else None

    def describe(self) -> str:
        return f"op #{self.index} {self.type!r} (output {self.main_output()!r})"


@dataclass
class Program:
    vars: dict[str, Var]
    ops: list[Op]
    source: str  # file name, for messages

    def persistable_names(self) -> list[str]:
        """Parameter variables in the order of a combined parameter file (sorted by name)."""
        return sorted(v.name for v in self.vars.values() if v.persistable and v.dtype is not None)


def _attr_value(attr) -> Any:
    """The Python value of one OpDesc.Attr, by its AttrType."""
    kind = attr.type
    if kind == 0:
        return attr.i
    if kind == 1:
        return attr.f
    if kind == 2:
        return attr.s.decode("utf-8", "replace")
    if kind == 3:
        return list(attr.ints)
    if kind == 4:
        return list(attr.floats)
    if kind == 5:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    if kind == 6:
        return attr.b
    if kind == 7:
        return list(attr.bools)
    if kind == 8:
        return attr.block_idx
    if kind == 9:
        return attr.l
    if kind == 10:
        return list(attr.blocks_idx)
    if kind == 11:
        return list(attr.longs)
    if kind == 12:
        return list(attr.float64s)
    if kind == 13:
        return attr.var_name
    if kind == 14:
        return list(attr.vars_name)
    if kind == 15:
        return attr.float64
    if kind == 16:
        return _scalar(attr.scalar)
    if kind == 17:
        return [_scalar(s) for s in attr.scalars]
    return None


def _scalar(s) -> Any:
    return {1: s.b, 2: s.i, 3: s.r}.get(s.type)


def _var(desc) -> Var:
    kind = desc.type.type
    if kind == DENSE_TENSOR and desc.type.HasField("dense_tensor"):
        tensor = desc.type.dense_tensor.tensor
        return Var(
            desc.name, DTYPES.get(tensor.data_type, f"type{tensor.data_type}"), tuple(tensor.dims), desc.persistable
        )
    if kind in (FEED_MINIBATCH, FETCH_LIST):
        return Var(desc.name, None, None, False)
    return Var(desc.name, None, None, desc.persistable)


def parse_program(data: bytes, source: str) -> Program:
    """The main block of a serialized ProgramDesc (a `.pdmodel` or `__model__` file)."""
    desc = messages()["ProgramDesc"]()
    try:
        desc.ParseFromString(data)
    except DecodeError as exc:
        raise ModelError(f"{source}: not a Paddle program (corrupt protobuf: {exc})") from exc
    if not desc.blocks or not desc.blocks[0].ops:
        raise ModelError(f"{source}: not a Paddle program (no blocks or no ops)")
    if len(desc.blocks) > 1:
        raise ModelError(
            f"{source}: the program has {len(desc.blocks)} blocks (control flow); int8kit reads "
            "single-block image classifiers only"
        )
    block = desc.blocks[0]
    variables = {v.name: _var(v) for v in block.vars}
    ops = []
    for index, op in enumerate(block.ops):
        if not op.type:
            raise ModelError(f"{source}: op #{index} has no type (corrupt file?)")
        ops.append(
            Op(
                type=op.type,
                inputs={v.parameter: list(v.arguments) for v in op.inputs},
                outputs={v.parameter: list(v.arguments) for v in op.outputs},
                attrs={a.name: _attr_value(a) for a in op.attrs},
                index=index,
            )
        )
    return Program(variables, ops, source)


def read_program(path: Path) -> Program:
    return parse_program(path.read_bytes(), str(path))
