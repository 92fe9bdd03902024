"""Message classes for Paddle's program protobuf (framework.proto), built at run time without protoc or paddle.

Only the fields the reader needs are declared, every one optional and every enum read as a plain int32: a
newer Paddle that adds enum values or fields still parses (unknown fields are skipped), and a missing field
is reported by the reader naming what is missing instead of failing inside protobuf. Field numbers follow
paddle/fluid/framework/framework.proto (package paddle.framework.proto).
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "int8kit.paddle_framework"
F = descriptor_pb2.FieldDescriptorProto

# (name, number, type, repeated, message type name or "")
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "Scalar": [
        ("type", 1, F.TYPE_INT32, False, ""),
        ("b", 2, F.TYPE_BOOL, False, ""),
        ("i", 3, F.TYPE_INT64, False, ""),
        ("r", 4, F.TYPE_DOUBLE, False, ""),
    ],
    "Attr": [
        ("name", 1, F.TYPE_STRING, False, ""),
        ("type", 2, F.TYPE_INT32, False, ""),
        ("i", 3, F.TYPE_INT32, False, ""),
        ("f", 4, F.TYPE_FLOAT, False, ""),
        ("s", 5, F.TYPE_BYTES, False, ""),
        ("ints", 6, F.TYPE_INT32, True, ""),
        ("floats", 7, F.TYPE_FLOAT, True, ""),
        ("strings", 8, F.TYPE_BYTES, True, ""),
        ("b", 10, F.TYPE_BOOL, False, ""),
        ("bools", 11, F.TYPE_BOOL, True, ""),
        ("block_idx", 12, F.TYPE_INT32, False, ""),
        ("l", 13, F.TYPE_INT64, False, ""),
        ("blocks_idx", 14, F.TYPE_INT32, True, ""),
        ("longs", 15, F.TYPE_INT64, True, ""),
        ("float64s", 16, F.TYPE_DOUBLE, True, ""),
        ("var_name", 17, F.TYPE_STRING, False, ""),
        ("vars_name", 18, F.TYPE_STRING, True, ""),
        ("float64", 19, F.TYPE_DOUBLE, False, ""),
        ("scalar", 20, F.TYPE_MESSAGE, False, "Scalar"),
        ("scalars", 21, F.TYPE_MESSAGE, True, "Scalar"),
    ],
    "OpVar": [("parameter", 1, F.TYPE_STRING, False, ""), ("arguments", 2, F.TYPE_STRING, True, "")],
    "OpDesc": [
        ("inputs", 1, F.TYPE_MESSAGE, True, "OpVar"),
        ("outputs", 2, F.TYPE_MESSAGE, True, "OpVar"),
        ("type", 3, F.TYPE_STRING, False, ""),
        ("attrs", 4, F.TYPE_MESSAGE, True, "Attr"),
    ],
    "TensorDesc": [("data_type", 1, F.TYPE_INT32, False, ""), ("dims", 2, F.TYPE_INT64, True, "")],
    "DenseTensorDesc": [("tensor", 1, F.TYPE_MESSAGE, False, "TensorDesc"), ("lod_level", 2, F.TYPE_INT32, False, "")],
    "VarType": [("type", 1, F.TYPE_INT32, False, ""), ("dense_tensor", 3, F.TYPE_MESSAGE, False, "DenseTensorDesc")],
    "VarDesc": [
        ("name", 1, F.TYPE_STRING, False, ""),
        ("type", 2, F.TYPE_MESSAGE, False, "VarType"),
        ("persistable", 3, F.TYPE_BOOL, False, ""),
    ],
    "BlockDesc": [
        ("idx", 1, F.TYPE_INT32, False, ""),
        ("parent_idx", 2, F.TYPE_INT32, False, ""),
        ("vars", 3, F.TYPE_MESSAGE, True, "VarDesc"),
        ("ops", 4, F.TYPE_MESSAGE, True, "OpDesc"),
    ],
    "Version": [("version", 1, F.TYPE_INT64, False, "")],
    "ProgramDesc": [("blocks", 1, F.TYPE_MESSAGE, True, "BlockDesc"), ("version", 4, F.TYPE_MESSAGE, False, "Version")],
}


@cache
def messages() -> dict[str, type]:
    """The message classes by name (ProgramDesc, TensorDesc, ...), built once."""
    file = descriptor_pb2.FileDescriptorProto(name="int8kit_paddle_framework.proto", package=PACKAGE, syntax="proto2")
    for name, fields in _MESSAGES.items():
        msg = file.message_type.add(name=name)
        for field_name, number, ftype, repeated, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=ftype)
            field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in _MESSAGES
    }


# VarType.Type values (framework.proto) for the tensor element types, and the variable kinds.
DTYPES = {
    0: "bool",
    1: "int16",
    2: "int32",
    3: "int64",
    4: "float16",
    5: "float32",
    6: "float64",
    20: "uint8",
    21: "int8",
    22: "bfloat16",
    36: "uint16",
    37: "uint32",
    38: "uint64",
}
DENSE_TENSOR = 7
FEED_MINIBATCH = 9
FETCH_LIST = 10
