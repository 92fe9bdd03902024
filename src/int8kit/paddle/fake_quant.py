"""PaddleSlim's fake-quant ops read as QDQ, with the reference converter's (Quant2Int8) semantics.

Paddle fake-quant programs come in three shapes:
- frozen (`onnx_format=False` PTQ, static QAT): activation `fake_quantize_*` ops output integers (x / s * 127),
  weights are stored as integers, and a `fake_(channel_wise_)dequantize_max_abs` after the conv/matmul
  scales its output back by weight scale * activation scale / 127^2;
- quant-dequant (dygraph QAT, AddQuantDequantPass): `fake_quantize_dequantize_*` ops round in place;
- ONNX style (`onnx_format=True`): `quantize_linear` -> `dequantize_linear` pairs (scale = abs max, not /127),
  weights stored as int8 behind a `dequantize_linear`, and `only_observer` pairs that only record a range.
All become one form: activations get a Q->DQ pair (int8, zero point 0, scale threshold/127) on the tensor the
op measured; weights become int8 + per-channel scale (an int8 initializer behind DequantizeLinear later);
integer-domain intermediate tensors disappear (the dequantize ops turn into aliases). A frozen weight's
scale is the dequantize factor over its input's quantization step, which reproduces Paddle's arithmetic
whatever the two scales are; a dequantize of anything else than a quantized tensor is refused, not guessed.
`out_threshold` attributes (output ranges PaddleSlim records) and observer pairs are collected as ranges on
the tensors they name, as the reference converter's `_gather_output_scales_from_attr` reads them; the reader
turns them into Q->DQ pairs only when asked (PaddleReadConfig.output_scales).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from int8kit.errors import ModelError, UnsupportedOpError
from int8kit.paddle.program import Op, Program

logger = logging.getLogger(__name__)

QDQ_OP = "int8kit_qdq"  # pseudo-op: Out = dequantize(quantize(X, Scale)), attrs["scale"] is the ONNX scale
ACT_QUANT = ("fake_quantize_abs_max", "fake_quantize_moving_average_abs_max", "fake_quantize_range_abs_max")
ACT_QUANT_DEQUANT = ("fake_quantize_dequantize_moving_average_abs_max", "fake_quantize_dequantize_abs_max")
WEIGHT_QUANT_DEQUANT = ("fake_channel_wise_quantize_dequantize_abs_max", "fake_quantize_dequantize_abs_max")
DEQUANT = ("fake_dequantize_max_abs", "fake_channel_wise_dequantize_max_abs")
WEIGHT_OPS = {"conv2d": "Filter", "depthwise_conv2d": "Filter", "mul": "Y", "matmul": "Y", "matmul_v2": "Y"}


@dataclass
class QuantWeight:
    """An int8 weight: value = q * scale along `axis` (per output channel) or per tensor (scale.size == 1)."""

    q: np.ndarray  # int8
    scale: np.ndarray  # float32, 1-D
    axis: int


@dataclass
class Translated:
    """The program after fake-quant folding: ops (QDQ pseudo-ops included) and what they left behind."""

    program: Program
    params: dict[str, np.ndarray]
    qweights: dict[str, QuantWeight] = field(default_factory=dict)
    ranges: dict[str, float] = field(default_factory=dict)  # tensor -> abs-max threshold (no QDQ pair)


def bin_count(bits: int) -> int:
    return (1 << (int(bits) - 1)) - 1


def _int_weight(name: str, w: np.ndarray, op: Op) -> np.ndarray:
    """A stored integer weight as int8; refuses values that are not integers in [-127, 127]."""
    if w.dtype == np.int8:
        return w
    if not np.all(np.mod(w, 1) == 0) or np.abs(w).max(initial=0) > 127:
        raise ModelError(f"{op.describe()}: weight {name!r} should hold int8 values after freezing but does not")
    return w.astype(np.int8)


def _quantize_weight(w: np.ndarray, threshold: np.ndarray, axis: int, bits: int) -> QuantWeight:
    """Round a float weight to int8 with per-channel (or per-tensor) abs-max thresholds, Paddle-style."""
    n = bin_count(bits)
    shape = [1] * w.ndim
    if threshold.size > 1:
        shape[axis] = threshold.size
    t = np.maximum(threshold.astype(np.float64).reshape(shape), 1e-30)
    q = np.clip(np.round(np.clip(w, -t, t) / t * n), -n, n).astype(np.int8)  # np.round is half-to-even
    return QuantWeight(q, (threshold.reshape(-1) / n).astype(np.float32), axis)


def _weight_axis(op: Op, w: np.ndarray) -> int:
    """The output-channel axis of a conv filter (0) or a matmul weight (last, or 0 when transposed)."""
    if op.type in ("conv2d", "depthwise_conv2d"):
        return 0
    if op.attrs.get("trans_y") or op.attrs.get("transpose_Y"):
        return 0
    return w.ndim - 1


class _Folder:
    def __init__(self, program: Program, params: dict[str, np.ndarray]):
        self.program = program
        self.params = params
        self.alias: dict[str, str] = {}
        self.multiplier: dict[str, float] = {}  # Paddle value * multiplier = the translated tensor's value
        self.producer: dict[str, Op] = {}
        self.out = Translated(program, params)
        self.ops: list[Op] = []

    def name(self, n: str) -> str:
        while n in self.alias:
            n = self.alias[n]
        return n

    def param(self, op: Op, slot: str) -> np.ndarray:
        name = op.input(slot)
        if name is None or name not in self.params:
            raise ModelError(f"{op.describe()}: input {slot} ({name!r}) is not a stored parameter")
        return self.params[name].astype(np.float32) if self.params[name].dtype != np.int8 else self.params[name]

    def scalar(self, op: Op, slot: str) -> float:
        value = self.param(op, slot).astype(np.float64).reshape(-1)
        if value.size != 1:
            raise UnsupportedOpError(f"{op.describe()}: per-channel {slot} on an activation is not supported")
        return float(value[0])

    def run(self) -> Translated:
        for op in self.program.ops:
            op = Op(
                op.type, {k: [self.name(n) for n in v] for k, v in op.inputs.items()}, op.outputs, op.attrs, op.index
            )
            handler = getattr(self, "_" + op.type, None)
            if handler is not None:
                handler(op)
            else:
                self._keep(op)
        self.out.program = Program(self.program.vars, self.ops, self.program.source)
        return self.out

    def _keep(self, op: Op) -> None:
        integer_data = op.type in WEIGHT_OPS and op.input(WEIGHT_OPS[op.type]) not in self.out.qweights
        data_slot = "Input" if op.type in ("conv2d", "depthwise_conv2d") else "X"
        for slot, names in op.inputs.items():
            for n in names:
                if integer_data and slot == data_slot:
                    continue  # integers times integer weights: the dequantize op after it rescales
                if self.multiplier.get(n, 1.0) != 1.0:
                    raise UnsupportedOpError(
                        f"{op.describe()}: input {slot} ({n!r}) is a quantized integer tensor that no dequantize "
                        "op turns back into real values before this op"
                    )
        for names in op.outputs.values():
            for n in names:
                self.producer[n] = op
        if integer_data and self.multiplier.get(op.input(data_slot), 1.0) != 1.0:
            self.multiplier[op.main_output()] = float("nan")  # integer-domain until its dequantize op
        threshold = op.attrs.get("out_threshold")
        if isinstance(threshold, float) and threshold > 0:
            for names in op.outputs.values():
                for n in names:
                    var = self.program.vars.get(n)
                    if var is not None and not var.persistable and var.dtype is not None:
                        self.out.ranges[n] = threshold
        self.ops.append(op)

    def _qdq(self, op: Op, x: str, out: str, threshold: float, bits: int) -> None:
        if threshold <= 0:
            logger.warning("%s: zero quantization scale; the tensor is left unquantized", op.describe())
            self.alias[out] = x
            return
        self.ops.append(Op(QDQ_OP, {"X": [x]}, {"Out": [out]}, {"scale": threshold / bin_count(bits)}, op.index))

    # ---- activations ------------------------------------------------------------------------------
    def _act_quant(self, op: Op) -> None:
        x, out = op.input("X"), op.output("Out")
        if x in self.params:
            raise UnsupportedOpError(f"{op.describe()}: {op.type} on the parameter {x!r} (unfrozen weights)")
        bits = op.attrs.get("bit_length", 8)
        threshold = self.scalar(op, "InScale")
        self._qdq(op, x, out, threshold, bits)
        self.multiplier[out] = threshold / bin_count(bits)

    _fake_quantize_abs_max = _fake_quantize_moving_average_abs_max = _fake_quantize_range_abs_max = _act_quant

    def _fake_quantize_dequantize_moving_average_abs_max(self, op: Op) -> None:
        x = op.input("X")
        if x in self.params:
            raise UnsupportedOpError(f"{op.describe()}: moving-average quantization of the parameter {x!r}")
        self._qdq(op, x, op.output("Out"), self.scalar(op, "InScale"), op.attrs.get("bit_length", 8))

    def _fake_quantize_dequantize_abs_max(self, op: Op) -> None:
        x = op.input("X")
        if x in self.params:
            self._weight_qdq(op, channel_wise=False)
            return
        # The scale is each batch's own abs max: no fixed range exists. The reference converter drops it too.
        logger.warning("%s: dynamic per-batch quantization has no fixed scale; treated as identity", op.describe())
        self.alias[op.output("Out")] = x

    def _fake_channel_wise_quantize_dequantize_abs_max(self, op: Op) -> None:
        if op.input("X") not in self.params:
            raise UnsupportedOpError(f"{op.describe()}: channel-wise quantization of an activation")
        self._weight_qdq(op, channel_wise=True)

    def _weight_qdq(self, op: Op, channel_wise: bool) -> None:
        """A weight rounded in place: the scale is the weight's own (per-channel) abs max."""
        name = op.input("X")
        w = self.param(op, "X")
        axis = int(op.attrs.get("quant_axis", 0)) if channel_wise else 0
        if channel_wise:
            threshold = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
        else:
            threshold = np.array([np.abs(w).max()])
        out = op.output("Out")
        self.out.qweights[out] = _quantize_weight(w, threshold, axis, op.attrs.get("bit_length", 8))
        self.params[out] = w
        logger.debug("%s: weight %s quantized, %d scale(s)", op.describe(), name, threshold.size)

    # ---- dequantize ops (frozen programs) -------------------------------------------------------------
    def _dequant(self, op: Op, factor: np.ndarray) -> None:
        """Out = X * factor. After a conv/matmul with integer weights it fixes the weights' scales."""
        x, out = op.input("X"), op.output("Out")
        producer = self.producer.get(x)
        slot = WEIGHT_OPS.get(producer.type) if producer is not None else None
        wname = producer.input(slot) if slot else None
        if wname is not None and wname in self.params and wname not in self.out.qweights:
            w = self.params[wname]
            axis = _weight_axis(producer, w)
            x_in = producer.input("Input" if slot == "Filter" else "X")
            m_in = self.multiplier.get(x_in, 1.0)
            if factor.size not in (1, w.shape[axis]):
                raise ModelError(f"{op.describe()}: {factor.size} scales for {w.shape[axis]} output channels")
            self.out.qweights[wname] = QuantWeight(_int_weight(wname, w, op), (factor / m_in).astype(np.float32), axis)
            self.alias[out] = x
            self.multiplier.pop(x, None)
            return
        m = self.multiplier.get(x, 1.0)
        if factor.size == 1 and np.isclose(float(factor[0]), m, rtol=1e-5):
            self.alias[out] = x
            self.multiplier.pop(x, None)
            return
        raise UnsupportedOpError(f"{op.describe()}: dequantizes {x!r}, which no quantized conv/matmul produced")

    def _fake_dequantize_max_abs(self, op: Op) -> None:
        max_range = float(op.attrs.get("max_range", 0.0))
        if max_range <= 0:
            raise ModelError(f"{op.describe()}: max_range attribute missing or not positive")
        self._dequant(op, np.array([self.scalar(op, "Scale") / max_range]))

    def _fake_channel_wise_dequantize_max_abs(self, op: Op) -> None:
        names = op.inputs.get("Scales") or []
        bits = op.attrs.get("quant_bits") or [8] * len(names)
        if not names or len(names) > 2 or len(bits) < len(names):
            raise ModelError(f"{op.describe()}: expected one or two Scales with matching quant_bits")
        factor = self.params[names[0]].astype(np.float64).reshape(-1) / bin_count(bits[0])
        if len(names) == 2:
            act = self.params[names[1]].astype(np.float64).reshape(-1)
            factor = factor * float(act[0]) / bin_count(bits[1])
        self._dequant(op, factor)

    # ---- ONNX-style ops ---------------------------------------------------------------------------
    def _check_zero_point(self, op: Op) -> None:
        zp_name = op.input("ZeroPoint")
        if zp_name and zp_name in self.params and np.any(self.params[zp_name] != 0):
            raise UnsupportedOpError(f"{op.describe()}: non-zero zero point (asymmetric quantization)")

    def _quantize_linear(self, op: Op) -> None:
        self._check_zero_point(op)
        x, y = op.input("X"), op.output("Y")
        bits = op.attrs.get("bit_length", 8)
        if x in self.params:  # a float weight quantized in the program: round it here
            axis = int(op.attrs.get("quant_axis", -1))
            threshold = self.param(op, "Scale").astype(np.float64).reshape(-1)
            w = self.param(op, "X")
            self.out.qweights[y] = _quantize_weight(w, threshold, max(axis, 0), bits)
            self.params[y] = w
            self.multiplier[y] = 0.0  # marks "integer weight", consumed by dequantize_linear
            return
        threshold = self.scalar(op, "Scale")
        if op.attrs.get("only_observer"):
            self.out.ranges[x] = threshold
            self.alias[y] = x
            return
        self._qdq(op, x, y, threshold, bits)
        self.multiplier[y] = threshold / bin_count(bits)

    def _dequantize_linear(self, op: Op) -> None:
        self._check_zero_point(op)
        x, y = op.input("X"), op.output("Y")
        bits = op.attrs.get("bit_length", 8)
        if x in self.out.qweights and self.multiplier.get(x) == 0.0:  # after our own quantize_linear
            self.out.qweights[y] = self.out.qweights[x]
            self.params[y] = self.params[x]
            return
        if x in self.params:  # a stored int8 weight
            axis = int(op.attrs.get("quant_axis", -1))
            scale = self.param(op, "Scale").astype(np.float64).reshape(-1) / bin_count(bits)
            q = _int_weight(x, self.params[x], op)
            if scale.size > 1 and scale.size != q.shape[max(axis, 0)]:
                raise ModelError(f"{op.describe()}: {scale.size} scales for axis {axis} of {q.shape}")
            self.out.qweights[y] = QuantWeight(q, scale.astype(np.float32), max(axis, 0))
            self.params[y] = q.astype(np.float32) * scale.reshape(
                [-1 if i == max(axis, 0) else 1 for i in range(q.ndim)] if scale.size > 1 else []
            )
            return
        factor = self.scalar(op, "Scale") / bin_count(bits)
        if np.isclose(factor, self.multiplier.get(x, 1.0), rtol=1e-5) or op.attrs.get("only_observer"):
            self.alias[y] = x
            self.multiplier.pop(x, None)
            return
        raise UnsupportedOpError(f"{op.describe()}: dequantize_linear of {x!r} with a scale its quantize did not use")


def fold_fake_quant(program: Program, params: dict[str, np.ndarray]) -> Translated:
    """Replace every fake-quant op by QDQ pseudo-ops, int8 weights and ranges (see the module docstring)."""
    return _Folder(program, dict(params)).run()
