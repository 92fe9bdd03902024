"""The saved INT8 model: a valid ONNX file with int8 weights and declared types, which the runtime
loads as it is (no FP32 optimisation again)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from int8kit import ops
from int8kit.convert.pipeline import convert
from int8kit.ir.save import save_model

from ._util import eval_inputs, run_int8kit


@pytest.fixture(scope="module")
def saved(tmp_path_factory, qdq):
    path = tmp_path_factory.mktemp("saved") / "int8.onnx"
    result = convert(qdq("concat_tiny", "ort_pc_u8"))
    save_model(result.model, path)
    return path, result


def test_valid_onnx_with_the_int8kit_domain_declared(saved):
    proto = onnx.load(saved[0])
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets[ops.DOMAIN] == ops.DOMAIN_VERSION
    onnx.checker.check_model(proto, full_check=False)
    assert {m.key: m.value for m in proto.metadata_props}[ops.OPTIMIZED_KEY] == "int8"


def test_int8_weights_and_declared_int8_tensors(saved):
    proto = onnx.load(saved[0])
    inits = {t.name: t for t in proto.graph.initializer}
    fused = [n for n in proto.graph.node if n.domain == ops.DOMAIN and n.op_type in ("Conv", "Dense")]
    assert fused and all(inits[n.input[1]].data_type == TensorProto.INT8 for n in fused)
    types = {v.name: v.type.tensor_type.elem_type for v in proto.graph.value_info}
    for node in fused:
        y_type = next(a.i for a in node.attribute if a.name == "y_type")
        if node.output[0] in types:
            assert types[node.output[0]] == y_type, node.name  # y_type uses ONNX elem type numbers
    assert any(t == TensorProto.UINT8 for t in types.values())


def test_predictor_runs_it_without_optimising_again(saved, monkeypatch):
    import int8kit.ir.optimize as optimize

    def refuse(*args, **kwargs):
        raise AssertionError("a converted model must not be optimised again")

    monkeypatch.setattr(optimize, "optimize_fp32", refuse)
    x = eval_inputs(n=16)
    from_file = run_int8kit(str(saved[0]), x)
    in_memory = run_int8kit(saved[1].model, x)
    np.testing.assert_array_equal(from_file, in_memory)
