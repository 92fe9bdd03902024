"""ctypes binding to the oneDNN v3 C API (libdnnl.so.3 from the `onednn-cpu-gomp` wheel), nothing else.

Every function used is declared with its argument and result types: an undeclared pointer result is
truncated to 32 bits and segfaults later. Handles are wrapped in small owner classes that destroy
them when collected. Enum values come from the v3.2 headers (`onednn-devel-cpu-gomp`).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import logging
import os
import pathlib
from ctypes import POINTER, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_uint, c_void_p
from dataclasses import dataclass

from int8kit.errors import Int8kitError

logger = logging.getLogger(__name__)

REQUIRED_MAJOR = 3
MAX_NDIMS = 12

# dnnl_status_t
SUCCESS = 0
_STATUS_NAMES = {
    1: "out of memory",
    2: "invalid arguments",
    3: "unimplemented",
    4: "last implementation reached",
    5: "runtime error",
    6: "not required",
}

# dnnl_data_type_t
DT_UNDEF, DT_F16, DT_BF16, DT_F32, DT_S32, DT_S8, DT_U8 = 0, 1, 2, 3, 4, 5, 6
DT_SIZE = {DT_F16: 2, DT_BF16: 2, DT_F32: 4, DT_S32: 4, DT_S8: 1, DT_U8: 1}

# dnnl_format_tag_t
TAG_ANY = 1
TAG_A, TAG_AB, TAG_ABC, TAG_ABCD, TAG_ABCDE = 2, 3, 4, 5, 6
TAG_BA, TAG_ACB, TAG_ACBD, TAG_ABDC, TAG_ACDB = 14, 15, 21, 20, 22
TAG_ABCD16B, TAG_ABCD8B, TAG_ABCD4B = 78, 102, 84  # aBcd16b (nChw16c), aBcd8b, aBcd4b
PLAIN_TAG = {rank: TAG_A + rank - 1 for rank in range(1, 13)}  # dnnl_a .. dnnl_abcdefghijkl (oneDNN's 12 dims)
# Layouts `like()` recognises when it must rebuild a descriptor with another data type.
KNOWN_TAGS = {
    1: (TAG_A,),
    2: (TAG_AB, TAG_BA),
    3: (TAG_ABC, TAG_ACB),
    4: (TAG_ABCD, TAG_ACDB, TAG_ABCD16B, TAG_ABCD8B, TAG_ABCD4B, TAG_ACBD, TAG_ABDC),
    5: (TAG_ABCDE,),
}

ENGINE_CPU = 1
FORWARD_INFERENCE = 96

# dnnl_alg_kind_t
CONVOLUTION_DIRECT = 1
ELTWISE_RELU, ELTWISE_TANH, ELTWISE_LINEAR, ELTWISE_HARDSIGMOID = 32, 33, 38, 40
ELTWISE_LOGISTIC, ELTWISE_EXP, ELTWISE_GELU_TANH, ELTWISE_SWISH = 41, 42, 43, 44
ELTWISE_ELU, ELTWISE_ABS, ELTWISE_SQRT, ELTWISE_SOFT_RELU = 34, 36, 37, 39
ELTWISE_LOG, ELTWISE_CLIP_V2, ELTWISE_GELU_ERF, ELTWISE_ROUND, ELTWISE_MISH, ELTWISE_HARDSWISH = 45, 47, 49, 50, 51, 52
ELTWISE_POW = 48
ELTWISE_SQUARE = 35
POOLING_MAX, POOLING_AVG_INCLUDE_PADDING, POOLING_AVG_EXCLUDE_PADDING = 511, 767, 1023
BINARY_ADD, BINARY_MUL, BINARY_MAX, BINARY_MIN, BINARY_DIV, BINARY_SUB = (
    131056,
    131057,
    131058,
    131059,
    131060,
    131061,
)
BINARY_GT, BINARY_LT = 131063, 131065  # dnnl_binary_gt / dnnl_binary_lt: 1.0 where true, else 0.0
REDUCTION_MAX, REDUCTION_MIN, REDUCTION_SUM, REDUCTION_MUL, REDUCTION_MEAN = 0x2FFF2, 0x2FFF3, 0x2FFF4, 0x2FFF5, 0x2FFF6
REDUCTION_NORM_LP_SUM, REDUCTION_NORM_LP_POWER_P_SUM = 0x2FFF8, 0x2FFFA  # (sum |x|^p)^(1/p), sum |x|^p
SOFTMAX_ACCURATE = 196608
SOFTMAX_LOG = 196609
RESAMPLING_NEAREST = 0x2FFF0
RESAMPLING_LINEAR = 0x2FFF1
LRN_ACROSS_CHANNELS = 0xAFF
# dnnl_normalization_flags_t
NORM_USE_SCALE, NORM_USE_SHIFT = 0x2, 0x4

# dnnl_query_t
QUERY_IMPL_INFO_STR = 8
QUERY_SRC_MD, QUERY_WEIGHTS_MD, QUERY_DST_MD, QUERY_SCRATCHPAD_MD = 129, 131, 133, 136
QUERY_NDIMS_S32, QUERY_DIMS, QUERY_DATA_TYPE = 256, 257, 258
QUERY_STRIDES, QUERY_INNER_NBLKS_S32 = 14, 263

SCRATCHPAD_MODE_USER = 1

# Execution argument ids
ARG_SRC, ARG_SRC_1, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 2, 17, 33, 41
ARG_MEAN, ARG_VARIANCE, ARG_SCALE, ARG_SHIFT = 49, 50, 51, 52
ARG_SCRATCHPAD = 80
ARG_ATTR_SCALES = 4096
ARG_ATTR_ZERO_POINTS = 8192
ARG_ATTR_MULTIPLE_POST_OP_BASE = 32768
ARG_MULTIPLE_SRC = 1024

# dnnl_cpu_isa_t (bit sets)
ISA_NAMES = {
    0xFEF: "avx512_core_amx",
    0x1FEF: "avx512_core_amx_fp16",
    0xE7: "avx512_core_bf16",
    0x67: "avx512_core_vnni",
    0x27: "avx512_core",
    0x1F: "avx2_vnni_2",
    0xF: "avx2_vnni",
    0x7: "avx2",
}

Dims = c_int64 * MAX_NDIMS


class DnnlError(Int8kitError):
    """A oneDNN call failed; the message names the call and what it was doing."""


class _Version(ctypes.Structure):
    _fields_ = [
        ("major", c_int),
        ("minor", c_int),
        ("patch", c_int),
        ("hash", c_char_p),
        ("cpu_runtime", c_uint),
        ("gpu_runtime", c_uint),
    ]


class ExecArg(ctypes.Structure):
    _fields_ = [("arg", c_int), ("memory", c_void_p)]


_P = c_void_p  # every handle type is an opaque pointer
_PP = POINTER(c_void_p)
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "dnnl_version": (POINTER(_Version), []),
    "dnnl_get_effective_cpu_isa": (c_int, []),
    "dnnl_set_verbose": (c_int, [c_int]),
    "dnnl_engine_create": (c_int, [_PP, c_int, c_size_t]),
    "dnnl_engine_destroy": (c_int, [_P]),
    "dnnl_stream_create": (c_int, [_PP, _P, c_uint]),
    "dnnl_stream_wait": (c_int, [_P]),
    "dnnl_stream_destroy": (c_int, [_P]),
    "dnnl_memory_desc_create_with_tag": (c_int, [_PP, c_int, Dims, c_int, c_int]),
    "dnnl_memory_desc_create_with_strides": (c_int, [_PP, c_int, Dims, c_int, Dims]),
    "dnnl_memory_desc_reshape": (c_int, [_PP, _P, c_int, Dims]),
    "dnnl_memory_desc_create_submemory": (c_int, [_PP, _P, Dims, Dims]),
    "dnnl_memory_desc_permute_axes": (c_int, [_PP, _P, POINTER(c_int)]),
    "dnnl_memory_desc_clone": (c_int, [_PP, _P]),
    "dnnl_memory_desc_destroy": (c_int, [_P]),
    "dnnl_memory_desc_query": (c_int, [_P, c_int, c_void_p]),
    "dnnl_memory_desc_equal": (c_int, [_P, _P]),
    "dnnl_memory_desc_get_size": (c_size_t, [_P]),
    "dnnl_memory_create": (c_int, [_PP, _P, _P, c_void_p]),
    "dnnl_memory_set_data_handle": (c_int, [_P, c_void_p]),
    "dnnl_memory_destroy": (c_int, [_P]),
    "dnnl_primitive_attr_create": (c_int, [_PP]),
    "dnnl_primitive_attr_destroy": (c_int, [_P]),
    "dnnl_primitive_attr_set_scales_mask": (c_int, [_P, c_int, c_int]),
    "dnnl_primitive_attr_set_post_ops": (c_int, [_P, _P]),
    "dnnl_primitive_attr_set_zero_points_mask": (c_int, [_P, c_int, c_int]),
    "dnnl_primitive_attr_set_scratchpad_mode": (c_int, [_P, c_int]),
    "dnnl_post_ops_create": (c_int, [_PP]),
    "dnnl_post_ops_destroy": (c_int, [_P]),
    "dnnl_post_ops_append_sum": (c_int, [_P, c_float, c_int32, c_int]),
    "dnnl_post_ops_append_eltwise": (c_int, [_P, c_int, c_float, c_float]),
    "dnnl_post_ops_append_binary": (c_int, [_P, c_int, _P]),
    "dnnl_reduction_primitive_desc_create": (c_int, [_PP, _P, c_int, _P, _P, c_float, c_float, _P]),
    "dnnl_convolution_forward_primitive_desc_create": (
        c_int,
        [_PP, _P, c_int, c_int, _P, _P, _P, _P, Dims, Dims, Dims, Dims, _P],
    ),
    "dnnl_inner_product_forward_primitive_desc_create": (c_int, [_PP, _P, c_int, _P, _P, _P, _P, _P]),
    "dnnl_eltwise_forward_primitive_desc_create": (
        c_int,
        [_PP, _P, c_int, c_int, _P, _P, c_float, c_float, _P],
    ),
    "dnnl_pooling_forward_primitive_desc_create": (
        c_int,
        [_PP, _P, c_int, c_int, _P, _P, Dims, Dims, Dims, Dims, Dims, _P],
    ),
    "dnnl_binary_primitive_desc_create": (c_int, [_PP, _P, c_int, _P, _P, _P, _P]),
    "dnnl_resampling_forward_primitive_desc_create": (c_int, [_PP, _P, c_int, c_int, _P, _P, _P, _P]),
    "dnnl_prelu_forward_primitive_desc_create": (c_int, [_PP, _P, c_int, _P, _P, _P, _P]),
    "dnnl_softmax_forward_primitive_desc_create": (c_int, [_PP, _P, c_int, c_int, _P, _P, c_int, _P]),
    "dnnl_concat_primitive_desc_create": (c_int, [_PP, _P, _P, c_int, c_int, POINTER(c_void_p), _P]),
    "dnnl_layer_normalization_forward_primitive_desc_create": (
        c_int,
        [_PP, _P, c_int, _P, _P, _P, c_float, c_uint, _P],
    ),
    "dnnl_matmul_primitive_desc_create": (c_int, [_PP, _P, _P, _P, _P, _P, _P]),
    "dnnl_lrn_forward_primitive_desc_create": (
        c_int,
        [_PP, _P, c_int, c_int, _P, _P, c_int64, c_float, c_float, c_float, _P],
    ),
    "dnnl_reorder_primitive_desc_create": (c_int, [_PP, _P, _P, _P, _P, _P]),
    "dnnl_primitive_desc_query_md": (c_void_p, [_P, c_int, c_int]),
    "dnnl_primitive_desc_query": (c_int, [_P, c_int, c_int, c_void_p]),
    "dnnl_primitive_desc_destroy": (c_int, [_P]),
    "dnnl_primitive_create": (c_int, [_PP, _P]),
    "dnnl_primitive_execute": (c_int, [_P, _P, c_int, POINTER(ExecArg)]),
    "dnnl_primitive_destroy": (c_int, [_P]),
}


@dataclass(frozen=True)
class Library:
    """The loaded libdnnl and where it came from."""

    cdll: ctypes.CDLL
    path: pathlib.Path
    version: tuple[int, int, int]

    @property
    def version_string(self) -> str:
        return ".".join(map(str, self.version))


def _find_library() -> pathlib.Path:
    """Locate libdnnl.so.3 through the wheel's own file list (it is not on the loader path)."""
    override = os.environ.get("INT8KIT_DNNL_LIBRARY")
    if override:
        return pathlib.Path(override)
    try:
        files = importlib.metadata.files("onednn-cpu-gomp") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise DnnlError(
            "oneDNN is not installed: `pip install onednn-cpu-gomp==2023.2.0` (a dependency of int8kit)"
        ) from exc
    for f in files:
        if f.name == "libdnnl.so.3":
            return pathlib.Path(f.locate()).resolve()
    raise DnnlError("the onednn-cpu-gomp package holds no libdnnl.so.3; reinstall it")


@functools.cache
def library() -> Library:
    path = _find_library()
    try:
        cdll = ctypes.CDLL(str(path))
    except OSError as exc:
        raise DnnlError(f"cannot load oneDNN from {path}: {exc} (it needs the system libgomp.so.1)") from exc
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    v = cdll.dnnl_version().contents
    if v.major != REQUIRED_MAJOR:
        raise DnnlError(f"{path} is oneDNN {v.major}.{v.minor}; int8kit needs the v{REQUIRED_MAJOR} API")
    isa = cdll.dnnl_get_effective_cpu_isa()
    if isa & 0x7 != 0x7:  # below avx2
        raise DnnlError(f"this CPU's best ISA for oneDNN is {isa:#x}: int8kit needs at least AVX2")
    _Handle._cdll = cdll
    logger.debug("loaded oneDNN %d.%d.%d from %s", v.major, v.minor, v.patch, path)
    return Library(cdll, path, (v.major, v.minor, v.patch))


def _lib() -> ctypes.CDLL:
    return library().cdll


def check(status: int, what: str) -> None:
    if status != SUCCESS:
        raise DnnlError(f"oneDNN {what} failed: {_STATUS_NAMES.get(status, status)}")


def effective_isa() -> str:
    isa = _lib().dnnl_get_effective_cpu_isa()
    return ISA_NAMES.get(isa, f"{isa:#x}")


def _dims(values) -> Dims:
    d = Dims()
    for i, v in enumerate(values):
        d[i] = int(v)
    return d


class _Handle:
    """Owns one oneDNN handle and destroys it when collected."""

    _destroy = ""
    _cdll: ctypes.CDLL | None = None  # set by library(); kept here so __del__ works during shutdown

    def __init__(self, handle: c_void_p, owned: bool = True):
        self.handle = handle
        self._owned = owned

    def __del__(self):
        if getattr(self, "_owned", False) and self.handle:
            destroy = getattr(self._cdll, self._destroy, None)
            if destroy is not None:  # None only at interpreter shutdown, when the process frees it all
                destroy(self.handle)
            self.handle = None


class Engine(_Handle):
    _destroy = "dnnl_engine_destroy"


class Stream(_Handle):
    _destroy = "dnnl_stream_destroy"

    def wait(self) -> None:
        check(_lib().dnnl_stream_wait(self.handle), "stream wait")


@functools.cache
def engine() -> Engine:
    h = c_void_p()
    check(_lib().dnnl_engine_create(ctypes.byref(h), ENGINE_CPU, 0), "engine create")
    return Engine(h)


def new_stream() -> Stream:
    h = c_void_p()
    check(_lib().dnnl_stream_create(ctypes.byref(h), engine().handle, 1), "stream create")
    return Stream(h)


class MemoryDesc(_Handle):
    """A memory descriptor: logical dims, data type and physical layout."""

    _destroy = "dnnl_memory_desc_destroy"

    @staticmethod
    def with_tag(dims, dtype: int, tag: int) -> MemoryDesc:
        h = c_void_p()
        check(
            _lib().dnnl_memory_desc_create_with_tag(ctypes.byref(h), len(dims), _dims(dims), dtype, tag),
            f"memory desc {tuple(dims)} dt={dtype} tag={tag}",
        )
        return MemoryDesc(h)

    @staticmethod
    def with_strides(dims, dtype: int, strides) -> MemoryDesc:
        h = c_void_p()
        check(
            _lib().dnnl_memory_desc_create_with_strides(ctypes.byref(h), len(dims), _dims(dims), dtype, _dims(strides)),
            f"memory desc {tuple(dims)} strides {tuple(strides)}",
        )
        return MemoryDesc(h)

    @staticmethod
    def plain(dims, dtype: int) -> MemoryDesc:
        return MemoryDesc.with_tag(dims, dtype, PLAIN_TAG[len(dims)])

    @staticmethod
    def any(dims, dtype: int) -> MemoryDesc:
        return MemoryDesc.with_tag(dims, dtype, TAG_ANY)

    @staticmethod
    def borrowed(handle: int | None) -> MemoryDesc:
        """Clone a descriptor owned by a primitive descriptor, so it outlives it."""
        if not handle:
            raise DnnlError("oneDNN returned no memory descriptor")
        h = c_void_p()
        check(_lib().dnnl_memory_desc_clone(ctypes.byref(h), c_void_p(handle)), "memory desc clone")
        return MemoryDesc(h)

    def reshape(self, dims) -> MemoryDesc:
        h = c_void_p()
        check(
            _lib().dnnl_memory_desc_reshape(ctypes.byref(h), self.handle, len(dims), _dims(dims)),
            f"reshape to {tuple(dims)}",
        )
        return MemoryDesc(h)

    def submemory(self, dims, offsets) -> MemoryDesc:
        """A window of this descriptor (same bytes): `dims` starting at `offsets`."""
        h = c_void_p()
        check(
            _lib().dnnl_memory_desc_create_submemory(ctypes.byref(h), self.handle, _dims(dims), _dims(offsets)),
            f"submemory {tuple(dims)} at {tuple(offsets)}",
        )
        return MemoryDesc(h)

    def permute_axes(self, permutation) -> MemoryDesc:
        h = c_void_p()
        perm = (c_int * len(permutation))(*permutation)
        check(_lib().dnnl_memory_desc_permute_axes(ctypes.byref(h), self.handle, perm), "permute axes")
        return MemoryDesc(h)

    @property
    def ndims(self) -> int:
        n = c_int()
        check(_lib().dnnl_memory_desc_query(self.handle, QUERY_NDIMS_S32, ctypes.byref(n)), "query ndims")
        return n.value

    @property
    def dims(self) -> tuple[int, ...]:
        p = POINTER(c_int64)()
        check(_lib().dnnl_memory_desc_query(self.handle, QUERY_DIMS, ctypes.byref(p)), "query dims")
        return tuple(p[i] for i in range(self.ndims))

    @property
    def strides(self) -> tuple[int, ...]:
        """Element strides of each dim (between outermost blocks for a blocked layout)."""
        p = POINTER(c_int64)()
        check(_lib().dnnl_memory_desc_query(self.handle, QUERY_STRIDES, ctypes.byref(p)), "query strides")
        return tuple(p[i] for i in range(self.ndims))

    def is_blocked(self) -> bool:
        """Whether the layout has inner blocks (nChw16c and friends), not just strides."""
        n = c_int()
        check(_lib().dnnl_memory_desc_query(self.handle, QUERY_INNER_NBLKS_S32, ctypes.byref(n)), "query blocks")
        return n.value > 0

    @property
    def dtype(self) -> int:
        d = c_int()
        check(_lib().dnnl_memory_desc_query(self.handle, QUERY_DATA_TYPE, ctypes.byref(d)), "query data type")
        return d.value

    @property
    def size(self) -> int:
        return int(_lib().dnnl_memory_desc_get_size(self.handle))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemoryDesc) and bool(_lib().dnnl_memory_desc_equal(self.handle, other.handle))

    __hash__ = None  # type: ignore[assignment]

    def tag(self) -> int | None:
        """The format tag this descriptor has, among KNOWN_TAGS, or None.

        Dims of size 1 make several tags describe the same memory ([N, C, 1, 1] is both nchw and nhwc to
        oneDNN's equality), but kernels pick their implementation by strides: an nhwc pool source with an nchw
        destination runs ref:any. So the tag with exactly these strides wins, then any equal one."""
        tagged = {t: MemoryDesc.with_tag(self.dims, self.dtype, t) for t in KNOWN_TAGS.get(self.ndims, ())}
        equal = [t for t, md in tagged.items() if md == self]
        exact = [t for t in equal if tagged[t].strides == self.strides]
        return (exact or equal or [None])[0]

    def like(self, dtype: int) -> MemoryDesc:
        """The same dims and layout with another data type (plain when the layout is not recognised)."""
        tag = self.tag()
        return MemoryDesc.with_tag(self.dims, dtype, tag if tag is not None else PLAIN_TAG[self.ndims])

    def is_plain(self) -> bool:
        return self == MemoryDesc.plain(self.dims, self.dtype)


class Memory(_Handle):
    """A oneDNN memory object over a buffer the caller keeps alive."""

    _destroy = "dnnl_memory_destroy"

    def __init__(self, md: MemoryDesc, pointer: int | None):
        h = c_void_p()
        check(
            _lib().dnnl_memory_create(ctypes.byref(h), md.handle, engine().handle, c_void_p(pointer or 0)),
            "memory create",
        )
        super().__init__(h)
        self.md = md

    def set_pointer(self, pointer: int) -> None:
        check(_lib().dnnl_memory_set_data_handle(self.handle, c_void_p(pointer)), "set data handle")


class PostOps(_Handle):
    _destroy = "dnnl_post_ops_destroy"

    def __init__(self):
        h = c_void_p()
        check(_lib().dnnl_post_ops_create(ctypes.byref(h)), "post-ops create")
        super().__init__(h)

    def append_sum(self, scale: float = 1.0, dtype: int = DT_UNDEF, zero_point: int = 0) -> None:
        check(_lib().dnnl_post_ops_append_sum(self.handle, scale, zero_point, dtype), "append sum post-op")

    def append_eltwise(self, alg: int, alpha: float = 0.0, beta: float = 0.0) -> None:
        check(_lib().dnnl_post_ops_append_eltwise(self.handle, alg, alpha, beta), "append eltwise post-op")

    def append_binary(self, alg: int, src1: MemoryDesc) -> None:
        """A binary post-op; its operand is passed as ARG_ATTR_MULTIPLE_POST_OP(index) | ARG_SRC_1."""
        check(_lib().dnnl_post_ops_append_binary(self.handle, alg, src1.handle), "append binary post-op")


def post_op_arg(index: int) -> int:
    """The execution argument id of the operand of binary post-op number `index` (its chain position)."""
    return ARG_ATTR_MULTIPLE_POST_OP_BASE * (index + 1) | ARG_SRC_1


class Attr(_Handle):
    """Primitive attributes: user-managed scratchpad, runtime scales and post-ops."""

    _destroy = "dnnl_primitive_attr_destroy"

    def __init__(
        self,
        scales: dict[int, int] | None = None,
        post_ops: PostOps | None = None,
        zero_points: dict[int, int] | None = None,
    ):
        h = c_void_p()
        check(_lib().dnnl_primitive_attr_create(ctypes.byref(h)), "attr create")
        super().__init__(h)
        check(_lib().dnnl_primitive_attr_set_scratchpad_mode(h, SCRATCHPAD_MODE_USER), "scratchpad mode")
        for arg, mask in (scales or {}).items():
            check(_lib().dnnl_primitive_attr_set_scales_mask(h, arg, mask), f"scales mask for arg {arg}")
        for arg, mask in (zero_points or {}).items():
            check(_lib().dnnl_primitive_attr_set_zero_points_mask(h, arg, mask), f"zero points mask for arg {arg}")
        if post_ops is not None:
            check(_lib().dnnl_primitive_attr_set_post_ops(h, post_ops.handle), "set post-ops")


def _h(obj: _Handle | None) -> c_void_p | None:
    return obj.handle if obj is not None else None


class PrimitiveDesc(_Handle):
    """A primitive descriptor: oneDNN's chosen implementation and its memory layouts."""

    _destroy = "dnnl_primitive_desc_destroy"

    def __init__(self, create: str, what: str, *args):
        h = c_void_p()
        status = getattr(_lib(), create)(ctypes.byref(h), *args)
        check(status, what)
        super().__init__(h)

    def md(self, query: int, index: int = 0) -> MemoryDesc:
        return MemoryDesc.borrowed(_lib().dnnl_primitive_desc_query_md(self.handle, query, index))

    def impl_info(self) -> str:
        s = c_char_p()
        check(_lib().dnnl_primitive_desc_query(self.handle, QUERY_IMPL_INFO_STR, 0, ctypes.byref(s)), "impl")
        return (s.value or b"").decode()

    def scratchpad_size(self) -> int:
        return MemoryDesc.borrowed(_lib().dnnl_primitive_desc_query_md(self.handle, QUERY_SCRATCHPAD_MD, 0)).size


def convolution_pd(src, weights, bias, dst, strides, dilates, pad_l, pad_r, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_convolution_forward_primitive_desc_create",
        "convolution",
        engine().handle,
        FORWARD_INFERENCE,
        CONVOLUTION_DIRECT,
        src.handle,
        weights.handle,
        _h(bias),
        dst.handle,
        _dims(strides),
        _dims(dilates),
        _dims(pad_l),
        _dims(pad_r),
        attr.handle,
    )


def inner_product_pd(src, weights, bias, dst, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_inner_product_forward_primitive_desc_create",
        "inner product",
        engine().handle,
        FORWARD_INFERENCE,
        src.handle,
        weights.handle,
        _h(bias),
        dst.handle,
        attr.handle,
    )


def eltwise_pd(alg: int, src, dst, alpha: float, beta: float, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_eltwise_forward_primitive_desc_create",
        "eltwise",
        engine().handle,
        FORWARD_INFERENCE,
        alg,
        src.handle,
        dst.handle,
        alpha,
        beta,
        attr.handle,
    )


def pooling_pd(alg: int, src, dst, strides, kernel, dilation, pad_l, pad_r, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_pooling_forward_primitive_desc_create",
        "pooling",
        engine().handle,
        FORWARD_INFERENCE,
        alg,
        src.handle,
        dst.handle,
        _dims(strides),
        _dims(kernel),
        _dims(dilation),
        _dims(pad_l),
        _dims(pad_r),
        attr.handle,
    )


def prelu_pd(src, weights, dst, attr: Attr) -> PrimitiveDesc:
    """PReLU: dst = src where src > 0, else weights * src (weights broadcast like a binary operand)."""
    return PrimitiveDesc(
        "dnnl_prelu_forward_primitive_desc_create",
        "prelu",
        engine().handle,
        FORWARD_INFERENCE,
        src.handle,
        weights.handle,
        dst.handle,
        attr.handle,
    )


def binary_pd(alg: int, src0, src1, dst, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_binary_primitive_desc_create",
        "binary",
        engine().handle,
        alg,
        src0.handle,
        src1.handle,
        dst.handle,
        attr.handle,
    )


def reduction_pd(alg: int, src, dst, attr: Attr, p: float = 0.0) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_reduction_primitive_desc_create",
        "reduction",
        engine().handle,
        alg,
        src.handle,
        dst.handle,
        p,
        0.0,
        attr.handle,
    )


def resampling_pd(alg: int, src, dst, attr: Attr) -> PrimitiveDesc:
    """Factors from the dims (F = out / in per spatial axis): the only ones oneDNN's kernels compute with."""
    return PrimitiveDesc(
        "dnnl_resampling_forward_primitive_desc_create",
        "resampling",
        engine().handle,
        FORWARD_INFERENCE,
        alg,
        None,
        src.handle,
        dst.handle,
        attr.handle,
    )


def softmax_pd(src, dst, axis: int, attr: Attr, alg: int = SOFTMAX_ACCURATE) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_softmax_forward_primitive_desc_create",
        "softmax",
        engine().handle,
        FORWARD_INFERENCE,
        alg,
        src.handle,
        dst.handle,
        axis,
        attr.handle,
    )


def concat_pd(dst, axis: int, srcs: list[MemoryDesc], attr: Attr) -> PrimitiveDesc:
    arr = (c_void_p * len(srcs))(*[s.handle for s in srcs])
    return PrimitiveDesc(
        "dnnl_concat_primitive_desc_create",
        "concat",
        engine().handle,
        _h(dst),
        len(srcs),
        axis,
        arr,
        attr.handle,
    )


def layer_normalization_pd(src, dst, epsilon: float, flags: int, attr: Attr) -> PrimitiveDesc:
    """Normalisation over the last dim of `src` (mean and variance computed per row, f32 statistics)."""
    return PrimitiveDesc(
        "dnnl_layer_normalization_forward_primitive_desc_create",
        "layer normalization",
        engine().handle,
        FORWARD_INFERENCE,
        src.handle,
        dst.handle,
        None,
        epsilon,
        flags,
        attr.handle,
    )


def lrn_pd(src, dst, size: int, alpha: float, beta: float, k: float, attr: Attr) -> PrimitiveDesc:
    """Local response normalisation across channels: dst = src / (k + alpha / size * sum(src^2))^beta."""
    return PrimitiveDesc(
        "dnnl_lrn_forward_primitive_desc_create",
        "LRN",
        engine().handle,
        FORWARD_INFERENCE,
        LRN_ACROSS_CHANNELS,
        src.handle,
        dst.handle,
        size,
        alpha,
        beta,
        k,
        attr.handle,
    )


def matmul_pd(src, weights, bias, dst, attr: Attr) -> PrimitiveDesc:
    return PrimitiveDesc(
        "dnnl_matmul_primitive_desc_create",
        "matmul",
        engine().handle,
        src.handle,
        weights.handle,
        _h(bias),
        dst.handle,
        attr.handle,
    )


def reorder_pd(src, dst, attr: Attr) -> PrimitiveDesc:
    e = engine().handle
    return PrimitiveDesc("dnnl_reorder_primitive_desc_create", "reorder", src.handle, e, dst.handle, e, attr.handle)


class Primitive(_Handle):
    _destroy = "dnnl_primitive_destroy"

    def __init__(self, pd: PrimitiveDesc):
        h = c_void_p()
        check(_lib().dnnl_primitive_create(ctypes.byref(h), pd.handle), "primitive create")
        super().__init__(h)
        self.pd = pd


def exec_args(pairs: list[tuple[int, Memory]]):
    """A ctypes argument array, built once at compile time and reused on every execute."""
    arr = (ExecArg * len(pairs))()
    for i, (arg, mem) in enumerate(pairs):
        arr[i].arg = arg
        arr[i].memory = mem.handle
    return arr


def execute_function():
    """dnnl_primitive_execute itself, for loops that bind their arguments once (see compile.Program)."""
    return _lib().dnnl_primitive_execute


def execute(prim: Primitive, stream: Stream, args) -> None:
    check(_lib().dnnl_primitive_execute(prim.handle, stream.handle, len(args), args), "execute")


def set_verbose(level: int) -> None:
    _lib().dnnl_set_verbose(level)
