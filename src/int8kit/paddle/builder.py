"""Builds the onnx_ir graph: Paddle variable names to values, parameters to initializers, nodes in order.

Int8 weights become an int8 initializer read through DequantizeLinear (per output channel), activation
QDQ pseudo-ops become QuantizeLinear -> DequantizeLinear with an int8 zero point of 0: the standard QDQ form
int8kit's converter reads from any tool.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from int8kit.errors import ModelError
from int8kit.names import fresh_name
from int8kit.paddle.fake_quant import QuantWeight
from int8kit.paddle.program import Op, Program


class Builder:
    def __init__(self, program: Program, params: dict[str, np.ndarray], qweights: dict[str, QuantWeight]):
        self.program = program
        self.params = params
        self.qweights = qweights
        self.values: dict[str, ir.Value] = {}
        self.nodes: list[ir.Node] = []
        self.initializers: list[ir.Value] = []
        self.taken: set[str] = set(program.vars) | set(params)
        self.op: Op | None = None  # the op being translated, for messages

    # ---- values ---------------------------------------------------------------------------------
    def const(self, array: np.ndarray, base: str) -> ir.Value:
        name = fresh_name(base, self.taken)
        tensor = ir.tensor(np.require(array, requirements="C"), name=name)  # keeps 0-d arrays 0-d
        value = ir.Value(name=name, shape=tensor.shape, type=ir.TensorType(tensor.dtype), const_value=tensor)
        self.initializers.append(value)
        return value

    def value(self, name: str) -> ir.Value:
        """The value of a Paddle variable: computed, a parameter, or an int8 weight behind DequantizeLinear."""
        if name in self.values:
            return self.values[name]
        if name in self.qweights:
            qw = self.qweights[name]
            q = self.const(qw.q, f"{name}_quantized")
            scale = self.const(qw.scale if qw.scale.size > 1 else qw.scale.reshape(()), f"{name}_scale")
            zp = self.const(np.zeros(qw.scale.shape if qw.scale.size > 1 else (), np.int8), f"{name}_zero_point")
            attrs = {"axis": qw.axis} if qw.scale.size > 1 else {}
            value = self.add("DequantizeLinear", [q, scale, zp], attrs)[0]
        elif name in self.params:
            value = self.const(
                self.params[name].astype(np.float32, copy=False)
                if self.params[name].dtype == np.float64
                else self.params[name],
                name,
            )
        else:
            where = self.op.describe() if self.op is not None else "the program"
            raise ModelError(f"{self.program.source}: {where} reads {name!r}, which nothing defines")
        self.values[name] = value
        return value

    def input(self, op: Op, slot: str) -> ir.Value:
        name = op.input(slot)
        if name is None:
            raise ModelError(f"{self.program.source}: {op.describe()} has no {slot} input")
        return self.value(name)

    def param(self, op: Op, slot: str) -> np.ndarray | None:
        """A constant input as an array (None when computed)."""
        name = op.input(slot)
        return self.params.get(name) if name is not None and name not in self.values else None

    def rank(self, name: str) -> int | None:
        if name in self.params:
            return self.params[name].ndim
        var = self.program.vars.get(name)
        return len(var.shape) if var is not None and var.shape is not None else None

    def shape(self, name: str) -> tuple[int, ...] | None:
        if name in self.params:
            return self.params[name].shape
        var = self.program.vars.get(name)
        return var.shape if var is not None else None

    # ---- nodes ----------------------------------------------------------------------------------
    def add(
        self, op_type: str, inputs: list[ir.Value | None], attrs: dict | None = None, outputs: int = 1, domain: str = ""
    ) -> list[ir.Value]:
        base = f"{self.op.type}_{self.op.index}" if self.op is not None else op_type
        node = ir.node(
            op_type,
            inputs,
            attributes=attrs or {},
            num_outputs=outputs,
            domain=domain,
            name=fresh_name(f"{base}/{op_type}", self.taken),
        )
        for out in node.outputs:
            out.name = fresh_name(f"{node.name}_out", self.taken)
        self.nodes.append(node)
        return list(node.outputs)

    def bind(self, name: str, value: ir.Value) -> None:
        """Give `value` the Paddle variable's name (the last node's output takes it over)."""
        if value.producer() is not None and value.name not in self.program.vars and name not in self.values:
            self.taken.discard(value.name)
            value.name = name
            self.taken.add(name)
        self.values[name] = value

    def output(self, op: Op, slot: str, value: ir.Value) -> None:
        name = op.output(slot)
        if name is None:
            raise ModelError(f"{self.program.source}: {op.describe()} has no {slot} output")
        self.bind(name, value)
