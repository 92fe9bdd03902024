"""Running a pipeline: an ordered list of pass instances, through onnx_ir's Sequential.

Every int8kit pipeline (intake, FP32 optimisation, conversion) has this one shape: a function returning
a fresh list of pass instances (fresh, since fusion passes keep per-run reports). A pass's name is its
`name` attribute or its class name in snake case (PlaceInt8Pass -> place_int8); `stop_after` runs the
first n passes (or up to the first pass of that name), and `debug_dir` writes a Graphviz .dot after
every pass, numbered in order.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx_ir as ir

from int8kit.errors import ConfigError, Int8kitError

logger = logging.getLogger(__name__)


def pass_name(p: ir.passes.PassBase) -> str:
    """`p.name`, else the class name without "Pass" in snake case (ValidateQDQPass -> validate_qdq)."""
    name = getattr(p, "name", None)
    if isinstance(name, str) and name:
        return name
    base = type(p).__name__.removesuffix("Pass")
    base = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", base)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", base).lower()


def pass_names(passes: Sequence[ir.passes.PassBase]) -> list[str]:
    return [pass_name(p) for p in passes]


class FixedPoint(ir.passes.PassManager):
    """Named PassManager: its passes repeat until none changes the graph (at most `steps` rounds)."""

    def __init__(self, name: str, passes: Sequence[ir.passes.PassBase], steps: int) -> None:
        super().__init__(passes, steps=steps, early_stop=True)
        self.name = name


class WriteDotPass(ir.passes.InPlacePass):
    """Writes the graph as it is to a .dot file (the --debug view); changes nothing."""

    def __init__(self, path: Path, title: str) -> None:
        super().__init__()
        self.path, self.title = path, title

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        from int8kit.ir.dot import write_dot

        write_dot(model, self.path, title=self.title)
        return ir.passes.PassResult(model, modified=False)


def _first(passes: Sequence[ir.passes.PassBase], stop_after: int | str | None) -> list[ir.passes.PassBase]:
    passes = list(passes)
    if stop_after is None:
        return passes
    if isinstance(stop_after, str):
        names = pass_names(passes)
        if stop_after not in names:
            raise ConfigError(f"stop_after: no pass named {stop_after!r}; passes: {', '.join(names)}")
        return passes[: names.index(stop_after) + 1]
    if not 0 < stop_after <= len(passes):
        raise ConfigError(f"stop_after must be 1..{len(passes)} (the number of passes), got {stop_after}")
    return passes[:stop_after]


def run_passes(
    model: ir.Model,
    passes: Sequence[ir.passes.PassBase],
    *,
    stop_after: int | str | None = None,
    debug_dir: str | os.PathLike | None = None,
) -> ir.Model:
    """Run `passes` (the first `stop_after` of them) in order on `model`; returns the resulting model.

    An int8kit error raised inside a pass (bad scope, unsupported QDQ pattern) comes out as itself, not
    wrapped in onnx_ir's PassError, so the CLI reports it as one line.
    """
    chosen = _first(passes, stop_after)
    steps: list[ir.passes.PassBase] = []
    for index, p in enumerate(chosen):
        steps.append(p)
        if debug_dir is not None:
            name = pass_name(p)
            steps.append(WriteDotPass(Path(debug_dir) / f"{index:02d}_{name}.dot", f"after {name}"))
    try:
        return ir.passes.Sequential(*steps)(model).model
    except ir.passes.PassError as exc:
        cause = _root_cause(exc)
        if cause is not None:
            raise cause from None
        raise


def _root_cause(exc: BaseException) -> BaseException | None:
    """The int8kit error or broken pass contract behind onnx_ir's PassError wrappers, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Int8kitError | ir.passes.PreconditionError):
            return seen
        seen = seen.__cause__
    return None


def iter_passes(passes: Sequence[ir.passes.PassBase]) -> Iterator[ir.passes.PassBase]:
    """Every pass, nested Sequential/PassManager members included, in order."""
    for p in passes:
        yield p
        if isinstance(p, ir.passes.Sequential):
            yield from iter_passes(p.passes)
