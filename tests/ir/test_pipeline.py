"""The one pipeline shape: named pass lists run by onnx_ir's Sequential, stop_after, a .dot per pass,
and passes that declare the metadata they read fail, naming themselves, when listed out of order."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import conversion_passes
from int8kit.errors import ConfigError
from int8kit.ir.intake import intake_passes
from int8kit.ir.optimize import fp32_passes, optimize_fp32
from int8kit.ir.pipeline import pass_name, pass_names, run_passes
from int8kit.ir.upgrade_opset import UpgradeOpsetPass

from ._util import init, make_model, op_types, rng, vinfo


def _conv_bn_relu():
    r = rng()
    inits = [
        init("w", r.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("g", r.uniform(0.5, 2, 4).astype(np.float32)),
        init("b", r.standard_normal(4).astype(np.float32)),
        init("m", r.standard_normal(4).astype(np.float32)),
        init("v", r.uniform(0.5, 2, 4).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["y"], name="relu"),
    ]
    return make_model(nodes, [vinfo("x", [1, 3, 6, 6])], [vinfo("y", [1, 4, 6, 6])], inits)


def test_names_are_snake_case_class_names_and_every_pipeline_is_a_list_of_instances():
    assert pass_name(UpgradeOpsetPass()) == "upgrade_opset"
    for passes in (intake_passes(), fp32_passes(), conversion_passes(ConvertConfig())):
        assert all(isinstance(p, ir.passes.PassBase) for p in passes)
    names = pass_names(fp32_passes())
    assert names[: len(intake_passes())] == pass_names(intake_passes())
    assert names[-4:] == ["fuse", "share_concat_prefix", "topological_sort", "mark_optimized"]
    conversion = pass_names(conversion_passes(ConvertConfig()))
    # conversion folds BN only after remove_qdq, and never runs the intake's BN fold before gather_scales
    assert conversion.index("fold_batch_norm") > conversion.index("remove_qdq") > conversion.index("gather_scales")


def test_stop_after_runs_the_first_n_passes():
    model = ir.serde.deserialize_model(_conv_bn_relu())
    n = pass_names(fp32_passes()).index("fold_batch_norm") + 1
    optimize_fp32(model, stop_after=n)
    assert op_types(model) == ["Conv", "Relu"]  # BN folded, nothing fused yet
    by_name = optimize_fp32(ir.serde.deserialize_model(_conv_bn_relu()), stop_after="fuse")
    assert op_types(by_name) == ["Conv"] and by_name.graph.node(0).domain == "int8kit"
    with pytest.raises(ConfigError, match="no pass named 'nope'"):
        optimize_fp32(model, stop_after="nope")
    with pytest.raises(ConfigError, match="stop_after"):
        optimize_fp32(model, stop_after=99)


def test_debug_writes_one_dot_per_fp32_pass(tmp_path):
    optimize_fp32(ir.serde.deserialize_model(_conv_bn_relu()), debug_dir=tmp_path)
    files = sorted(tmp_path.glob("*.dot"))
    assert [f.stem.split("_", 1)[1] for f in files] == pass_names(fp32_passes())
    assert "BatchNormalization" in files[0].read_text() and "BatchNormalization" not in files[-1].read_text()


def test_a_misordered_pipeline_fails_naming_the_pass_and_the_key():
    passes = conversion_passes(ConvertConfig())
    names = pass_names(passes)
    place = passes[names.index("place_int8")]
    gather = names.index("gather_scales")
    misordered = [*passes[:gather], place]  # place_int8 before anything wrote encodings
    model = ir.serde.deserialize_model(_conv_bn_relu())
    with pytest.raises(ir.passes.PreconditionError, match=r"PlaceInt8Pass reads int8kit\.encoding"):
        run_passes(model, [p for p in misordered if pass_name(p) != "validate_qdq"])
