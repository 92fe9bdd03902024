"""Paddle's parameter files: one serialized DenseTensor per file, or all of them back to back (combined).

Layout of one tensor (paddle/fluid/framework/lod_tensor.cc and tensor_util.cc, SerializeToStream), all
little-endian: uint32 version (0); uint64 LoD level count, then per level a uint64 byte size and that many
bytes of offsets; uint32 tensor version (0); int32 size of a TensorDesc protobuf (data type, dims), the
TensorDesc; then the raw elements. A combined file (`model.pdiparams`, `__params__`) holds the program's
persistable variables in name order (`save_combine` as paddle.static.io writes it).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from int8kit.errors import ModelError
from int8kit.paddle.proto import DTYPES, messages


class _Cursor:
    """Reads fixed-size fields from a bytes buffer, failing with the file name and offset when it runs out."""

    def __init__(self, data: bytes | memoryview, where: str):
        self.data = memoryview(data)
        self.pos = 0
        self.where = where

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"{self.where}: truncated parameter file ({what} at byte {self.pos} needs {n} bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]


def read_tensor(cur: _Cursor, name: str) -> np.ndarray:
    """One serialized DenseTensor at the cursor, as a numpy array (copied out of the file buffer)."""
    version = cur.unpack("<I", f"{name}: version")
    if version != 0:
        raise ModelError(f"{cur.where}: tensor {name!r} has unknown format version {version} (corrupt file?)")
    levels = cur.unpack("<Q", f"{name}: LoD level count")
    if levels > 16:
        raise ModelError(f"{cur.where}: tensor {name!r} claims {levels} LoD levels (corrupt file?)")
    for _ in range(levels):
        cur.take(cur.unpack("<Q", f"{name}: LoD size"), f"{name}: LoD")
    if cur.unpack("<I", f"{name}: tensor version") != 0:
        raise ModelError(f"{cur.where}: tensor {name!r} has an unknown tensor version (corrupt file?)")
    desc_size = cur.unpack("<i", f"{name}: descriptor size")
    desc = messages()["TensorDesc"]()
    try:
        desc.ParseFromString(bytes(cur.take(desc_size, f"{name}: descriptor")))
    except DecodeError as exc:
        raise ModelError(f"{cur.where}: tensor {name!r} has a corrupt descriptor ({exc})") from exc
    if desc.data_type not in DTYPES:
        raise ModelError(f"{cur.where}: tensor {name!r} has unsupported data type {desc.data_type}")
    dtype = np.dtype(DTYPES[desc.data_type]) if DTYPES[desc.data_type] != "bfloat16" else None
    if dtype is None:
        raise ModelError(f"{cur.where}: tensor {name!r} is bfloat16, which int8kit does not read")
    dims = [int(d) for d in desc.dims]
    if any(d < 0 for d in dims):
        raise ModelError(f"{cur.where}: tensor {name!r} has negative dims {dims}")
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    raw = cur.take(count * dtype.itemsize, f"{name}: {count} elements")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)


def read_combined(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The tensors of a combined file, named in order by `names` (the sorted persistable variables)."""
    cur = _Cursor(path.read_bytes(), str(path))
    tensors = {name: read_tensor(cur, name) for name in names}
    if cur.pos != len(cur.data):
        raise ModelError(
            f"{path}: {len(cur.data) - cur.pos} bytes left after the program's {len(names)} parameters "
            "(parameter file does not belong to this program?)"
        )
    return tensors


def read_separate(directory: Path, names: list[str]) -> dict[str, np.ndarray]:
    """One file per persistable variable, named after it, in `directory`."""
    tensors = {}
    for name in names:
        path = directory / name
        if not path.is_file():
            raise ModelError(f"{directory}: parameter file {name!r} is missing (no combined parameter file either)")
        cur = _Cursor(path.read_bytes(), str(path))
        tensors[name] = read_tensor(cur, name)
    return tensors
