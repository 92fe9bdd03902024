"""Paddle 3's PIR programs (`model.json`, paddle.jit.save's default) parsed into the reader's Program form.

The JSON holds one region with one block of ops. Each op is `{"#": dialect.name, "A": attributes, "I": inputs,
"O": outputs}`; values are numbered (`{"%": n}`, 0 = none), inputs are positional, attributes are typed
(`{"N": name, "AT": {"#": type, "D": data}}`). Parameters are `"p"` ops naming the stored tensor (the
`.pdiparams` file holds them in name order, like the protobuf format); `full`/`full_int_array` constants become
parameters too, so ops that take their kernel size or shape as a tensor read it like an attribute. The op and
input-slot names of the protobuf format are restored from PIR_OPS, so the rest of the reader is shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from int8kit.errors import ModelError
from int8kit.paddle.program import Op, Program, Var

_DTYPES = {
    "t_f32": "float32",
    "t_f64": "float64",
    "t_f16": "float16",
    "t_i64": "int64",
    "t_i32": "int32",
    "t_i16": "int16",
    "t_i8": "int8",
    "t_ui8": "uint8",
    "t_bool": "bool",
}
_ACT = ["X"]
# PIR op name -> (protobuf-format op type, input slots in order, output slots in order, attribute renames)
PIR_OPS: dict[str, tuple[str, list[str], list[str], dict[str, str]]] = {
    "conv2d": ("conv2d", ["Input", "Filter"], ["Output"], {}),
    "depthwise_conv2d": ("depthwise_conv2d", ["Input", "Filter"], ["Output"], {}),
    "batch_norm": ("batch_norm", ["X", "Mean", "Variance", "Scale", "Bias"], ["Y"], {"data_format": "data_layout"}),
    "batch_norm_": ("batch_norm", ["X", "Mean", "Variance", "Scale", "Bias"], ["Y"], {"data_format": "data_layout"}),
    "relu": ("relu", _ACT, ["Out"], {}),
    "relu6": ("relu6", _ACT, ["Out"], {}),
    "sigmoid": ("sigmoid", _ACT, ["Out"], {}),
    "tanh": ("tanh", _ACT, ["Out"], {}),
    "hardswish": ("hard_swish", _ACT, ["Out"], {}),
    "hardsigmoid": ("hard_sigmoid", _ACT, ["Out"], {}),
    "swish": ("swish", _ACT, ["Out"], {}),
    "silu": ("silu", _ACT, ["Out"], {}),
    "leaky_relu": ("leaky_relu", _ACT, ["Out"], {"negative_slope": "alpha"}),
    "add": ("elementwise_add", ["X", "Y"], ["Out"], {}),
    "subtract": ("elementwise_sub", ["X", "Y"], ["Out"], {}),
    "multiply": ("elementwise_mul", ["X", "Y"], ["Out"], {}),
    "divide": ("elementwise_div", ["X", "Y"], ["Out"], {}),
    "maximum": ("elementwise_max", ["X", "Y"], ["Out"], {}),
    "minimum": ("elementwise_min", ["X", "Y"], ["Out"], {}),
    "matmul": ("matmul_v2", ["X", "Y"], ["Out"], {"transpose_x": "trans_x", "transpose_y": "trans_y"}),
    "pool2d": ("pool2d", ["X", "@ksize"], ["Out"], {}),
    "flatten": ("flatten_contiguous_range", _ACT, ["Out"], {}),
    "dropout": ("dropout", ["X", "Seed", "@dropout_prob"], ["Out"], {"mode": "dropout_implementation"}),
    "softmax": ("softmax", _ACT, ["Out"], {}),
    "reshape": ("reshape2", ["X", "@shape"], ["Out"], {}),
    "transpose": ("transpose2", _ACT, ["Out"], {"perm": "axis"}),
    "scale": ("scale", ["X", "@scale"], ["Out"], {}),
    "assign": ("assign", _ACT, ["Out"], {}),
    "data": ("feed", [], ["Out"], {}),
    "fetch": ("fetch", ["X"], ["Out"], {}),
}


def _attr(at: dict) -> Any:
    kind, data = at.get("#", ""), at.get("D")
    if kind == "0.a_array":
        return [_attr(a) for a in data]
    return data


def _tensor_type(value: dict) -> tuple[str | None, tuple[int, ...] | None]:
    tt = value.get("TT") or {}
    data = tt.get("D")
    if tt.get("#") != "0.t_dtensor" or not isinstance(data, list) or len(data) < 2:
        return None, None
    kind = str(data[0].get("#", "")).split(".", 1)[-1]
    return _DTYPES.get(kind, kind), tuple(int(d) for d in data[1])


def parse_pir(data: bytes, source: str) -> tuple[Program, dict[str, np.ndarray]]:
    """The program of a PIR .json, and the constants (`full`, `full_int_array`) it computes."""
    try:
        doc = json.loads(data)
        blocks = [b for r in doc["program"]["regions"] for b in r["blocks"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{source}: not a Paddle PIR program ({exc.__class__.__name__}: {exc})") from None
    if doc.get("base_code", {}).get("magic") != "pir":
        raise ModelError(f"{source}: not a Paddle PIR program (no 'pir' magic)")
    if len(blocks) != 1:
        raise ModelError(f"{source}: {len(blocks)} blocks (control flow); int8kit reads single-block classifiers")
    names: dict[int, str] = {}
    variables: dict[str, Var] = {}
    constants: dict[str, np.ndarray] = {}
    ops: list[Op] = []

    def name_of(ref: dict) -> str | None:
        n = ref.get("%", 0)
        return None if n == 0 else names.get(n, f"%{n}")

    for index, raw in enumerate(blocks[0]["ops"]):
        kind = raw.get("#", "")
        outs = raw.get("O") or []
        outs = [outs] if isinstance(outs, dict) else outs
        if kind == "p":  # parameter: A = [..., name]
            name = str(raw["A"][-1])
            names[outs[0]["%"]] = name
            variables[name] = Var(name, *_tensor_type(outs[0]), persistable=True)
            continue
        attrs = {a["N"]: _attr(a["AT"]) for a in raw.get("A") or [] if "N" in a and "AT" in a}
        short = kind.split(".", 1)[-1]
        if short in ("full", "full_int_array"):
            dtype = np.dtype(attrs.get("dtype", "float32"))
            value = attrs.get("value")
            array = np.full(attrs.get("shape", [1]), value, dtype) if short == "full" else np.array(value, dtype)
            name = f"%{outs[0]['%']}"
            names[outs[0]["%"]] = name
            constants[name] = array
            variables[name] = Var(name, str(array.dtype), array.shape, persistable=False)
            continue
        if short == "data":
            names[outs[0]["%"]] = str(attrs.get("name", f"%{outs[0]['%']}"))
        out_names = []
        for out in outs:
            name = names.setdefault(out["%"], f"%{out['%']}")
            variables[name] = Var(name, *_tensor_type(out), persistable=False)
            out_names.append(name)
        in_names = [name_of(i) for i in raw.get("I") or []]
        op_type, in_slots, out_slots, renames = PIR_OPS.get(short, (short, [], ["Out"], {}))
        attrs = {renames.get(k, k): v for k, v in attrs.items()}
        inputs: dict[str, list[str]] = {}
        for i, name in enumerate(in_names):
            if name is None:
                continue
            slot = in_slots[i] if i < len(in_slots) else f"X{i}"
            if slot.startswith("@"):  # a tensor standing for an attribute of the protobuf format
                if name in constants:
                    value = constants[name]
                    scalar = slot in ("@dropout_prob", "@scale") and value.size == 1
                    attrs[slot[1:]] = value.reshape(-1)[0].item() if scalar else value.tolist()
                    continue
                slot = slot[1:]
            inputs[slot] = [name]
        outputs = {slot: [n] for slot, n in zip(out_slots, out_names, strict=False)}
        if short == "fetch":
            outputs = {"Out": ["fetch"]}
        ops.append(Op(op_type, inputs, outputs, attrs, index))
    return Program(variables, ops, source), constants


def read_pir(path: Path) -> tuple[Program, dict[str, np.ndarray]]:
    return parse_pir(path.read_bytes(), str(path))
