"""Read a Paddle inference model (directory or program file) into the onnx_ir model the ONNX path builds.

Layouts accepted, as paddle.static.save_inference_model / paddle.jit.save and PaddleSlim write them:
`<dir>/model.pdmodel` (or any single `*.pdmodel`) with the `.pdiparams` of the same stem; `<dir>/__model__`
with `__params__` (combined) or one file per parameter (separate); Paddle 3's PIR `<dir>/model.json` with its
`.pdiparams`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx_ir as ir

from int8kit.errors import ModelError, UnsupportedOpError
from int8kit.paddle.builder import Builder
from int8kit.paddle.fake_quant import QDQ_OP, fold_fake_quant
from int8kit.paddle.fold_bn import fold_batch_norms
from int8kit.paddle.op_table import OPS
from int8kit.paddle.params import read_combined, read_separate
from int8kit.paddle.pir import read_pir
from int8kit.paddle.program import Op, Program, read_program

logger = logging.getLogger(__name__)

__all__ = ["PaddleReadConfig", "is_paddle_model", "load_paddle_model", "read_paddle_parts"]

OPSET = 17


def _files(path: Path) -> tuple[Path, Path | None]:
    """(program file, combined parameter file or None for separate files) of a model path."""
    if path.is_file():
        params = path.with_suffix(".pdiparams") if path.suffix in (".pdmodel", ".json") else path.parent / "__params__"
        return path, params if params.is_file() else None
    if not path.is_dir():
        raise ModelError(f"{path}: no such Paddle model file or directory")
    if (path / "__model__").is_file():
        return path / "__model__", (path / "__params__") if (path / "__params__").is_file() else None
    programs = sorted(path.glob("*.pdmodel"))
    if len(programs) > 1:
        raise ModelError(f"{path}: several .pdmodel files ({', '.join(p.name for p in programs)}); name one")
    if programs:
        return _files(programs[0])
    if list(path.glob("*.json")) and list(path.glob("*.pdiparams")):
        return _files(sorted(path.glob("*.json"))[0])
    raise ModelError(f"{path}: no Paddle program (model.pdmodel or __model__) in this directory")


def is_paddle_model(path: str | os.PathLike) -> bool:
    """Whether `path` looks like a Paddle inference model (by its file names, without reading it)."""
    path = Path(path)
    if path.is_file():
        return (
            path.suffix == ".pdmodel"
            or path.name == "__model__"
            or (path.suffix == ".json" and path.with_suffix(".pdiparams").is_file())
        )
    return path.is_dir() and (
        (path / "__model__").is_file()
        or any(path.glob("*.pdmodel"))
        or (any(path.glob("*.json")) and any(path.glob("*.pdiparams")))
    )


def read_paddle_parts(path: str | os.PathLike) -> tuple[Program, dict[str, np.ndarray]]:
    """The program and its parameters, read and checked against each other."""
    program_file, params_file = _files(Path(path))
    constants: dict[str, np.ndarray] = {}
    if program_file.suffix == ".json":
        program, constants = read_pir(program_file)
    else:
        program = read_program(program_file)
    names = program.persistable_names()
    params = read_combined(params_file, names) if params_file is not None else read_separate(program_file.parent, names)
    params.update(constants)
    for name, array in params.items():
        var = program.vars[name]
        if var.shape is not None and int(np.prod(var.shape)) != array.size and all(d >= 0 for d in var.shape):
            raise ModelError(
                f"{program_file}: parameter {name!r} has shape {array.shape}, the program says {list(var.shape)}"
            )
    return program, params


def _io_names(program: Program, kind: str) -> list[str]:
    slot_in, slot_out = ("X", "Out")
    ops = [op for op in program.ops if op.type == kind]
    ops.sort(key=lambda op: int(op.attrs.get("col", 0)))
    return [op.output(slot_out) if kind == "feed" else op.input(slot_in) for op in ops]


def _value_type(program: Program, name: str, value: ir.Value) -> None:
    var = program.vars.get(name)
    if var is None or var.dtype is None or var.shape is None:
        return
    value.type = ir.TensorType(ir.DataType.from_numpy(np.dtype(var.dtype)))
    value.shape = ir.Shape([d if d >= 0 else ("N" if i == 0 else None) for i, d in enumerate(var.shape)])


@dataclass(frozen=True)
class PaddleReadConfig:
    """How to read a fake-quant program.

    output_scales: also quantize the tensors PaddleSlim only measured (`out_threshold` attributes, observer
    pairs) with a Q->DQ pair, as Paddle's reference converter uses those scales; off by default, so the QDQ
    graph computes exactly what Paddle's own fake-quant model computes. Fetched tensors are never quantized.
    """

    output_scales: bool = False


def _quantize_measured(b: Builder, op: Op, ranges: dict[str, float], skip: set[str]) -> None:
    """A Q->DQ pair on each output of `op` that has a measured range and is not in `skip`."""
    for names in op.outputs.values():
        for name in names:
            if name in ranges and name not in skip and name in b.values and op.type != QDQ_OP:
                qdq = Op(QDQ_OP, {"X": [name]}, {"Out": [name]}, {"scale": ranges[name] / 127.0}, op.index)
                OPS[QDQ_OP](b, qdq)


def load_paddle_model(path: str | os.PathLike, config: PaddleReadConfig | None = None) -> ir.Model:
    """Translate a Paddle (fake-quant or FP32) inference model into an onnx_ir QDQ or FP32 model."""
    config = config or PaddleReadConfig()
    program, params = read_paddle_parts(path)
    feeds, fetches = _io_names(program, "feed"), _io_names(program, "fetch")
    if not feeds or not fetches:
        raise ModelError(f"{program.source}: no feed or fetch ops (not an inference program)")
    translated = fold_fake_quant(program, params)
    fetches = _io_names(translated.program, "fetch")  # through the aliases dequantize ops left
    fold_batch_norms(translated, set(fetches))
    b = Builder(translated.program, translated.params, translated.qweights)
    # Fetched tensors stay float; tensors a fake-quant op quantizes already have their pair.
    skip = set(fetches) | {op.input("X") for op in translated.program.ops if op.type == QDQ_OP}
    inputs = []
    for name in feeds:
        value = ir.Value(name=name)
        _value_type(program, name, value)
        b.values[name] = value
        inputs.append(value)
    for op in translated.program.ops:
        fn = OPS.get(op.type)
        if fn is None:
            raise UnsupportedOpError(
                f"{program.source}: unsupported Paddle op {op.type!r} (op #{op.index}, output {op.main_output()!r})"
            )
        b.op = op
        fn(b, op)
        if config.output_scales:
            _quantize_measured(b, op, translated.ranges, skip)
    b.op = None
    outputs = [b.value(name) for name in fetches]
    graph = ir.Graph(
        inputs, outputs, nodes=b.nodes, initializers=b.initializers, opset_imports={"": OPSET}, name=Path(path).name
    )
    model = ir.Model(graph, ir_version=8, producer_name="int8kit.paddle")
    logger.info(
        "read Paddle model %s: %d ops -> %d nodes, %d int8 weights, %d recorded ranges",
        program.source,
        len(program.ops),
        len(b.nodes),
        len(translated.qweights),
        len(translated.ranges),
    )
    return model
