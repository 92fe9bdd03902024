"""Suite-wide: the onnxruntime reference on a CPU without VNNI or AMX.

There onnxruntime's fused int8 kernels (MLAS, like oneDNN's) sum u8 x s8 pairs into 16 bits with
vpmaddubsw, which saturates: on an AVX2-only EPYC its own run of a symmetric s8 QDQ file gave logits at
cosine 0.956 against the same file's float arithmetic, where int8kit gave 0.9999996. A reference must
compute what the file says, so on such CPUs every onnxruntime session of a QDQ model in the tests runs
with its graph optimisations off: QuantizeLinear, DequantizeLinear and the float ops exactly as written
(the spec). Float models (onnxruntime's own calibration runs among them) and CPUs with VNNI or AMX are
left as they are.
"""

from __future__ import annotations

import onnx
import onnxruntime as ort

from int8kit.runtime import cpu

ORT_INT8_KERNELS_EXACT = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu.cpu_int8_features()))


QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _has_qdq(path_or_bytes) -> bool:
    if isinstance(path_or_bytes, bytes):
        model = onnx.ModelProto.FromString(path_or_bytes)
    else:
        model = onnx.load(str(path_or_bytes), load_external_data=False)
    return any(node.op_type in QDQ_OPS for node in model.graph.node)


if not ORT_INT8_KERNELS_EXACT:
    _InferenceSession = ort.InferenceSession

    class _SpecSession(_InferenceSession):
        """onnxruntime's session with its QDQ fusions off: the file's own arithmetic."""

        def __init__(self, path_or_bytes, sess_options=None, *args, **kwargs):
            options = sess_options if sess_options is not None else ort.SessionOptions()
            if _has_qdq(path_or_bytes):
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            super().__init__(path_or_bytes, options, *args, **kwargs)

    ort.InferenceSession = _SpecSession
