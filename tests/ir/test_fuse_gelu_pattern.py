"""The exact GELU spelled out in Div/Mul/Erf/Add becomes one int8kit.Gelu, fused into the Dense before it,
and the engine's answer equals onnxruntime's on the spelled-out original."""

import math

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.ir.fuse_gelu_pattern import FuseGeluPatternPass
from int8kit.ir.optimize import optimize_fp32
from int8kit.runtime.predictor import Predictor
from tests.ir._util import init, make_model, rng, run_ort, vinfo

D = 6


def _gelu_nodes(form: str, half_value: float = 0.5) -> tuple[list, list]:
    """0.5 * h * (1 + erf(h / sqrt 2)) on value "h" as exporters write it; output "y"."""
    half, root = init("half", np.array(half_value, np.float32)), init("root2", np.array(math.sqrt(2), np.float32))
    one, inv = init("one", np.array(1.0, np.float32)), init("inv_root2", np.array(1 / math.sqrt(2), np.float32))
    scale = (
        helper.make_node("Mul", ["h", "inv_root2"], ["z"])
        if form == "mul-by-inverse"
        else helper.make_node("Div", ["h", "root2"], ["z"])
    )
    nodes = [scale, helper.make_node("Erf", ["z"], ["e"]), helper.make_node("Add", ["e", "one"], ["s"])]
    if form in ("torch", "mul-by-inverse"):  # (h * s) * 0.5, torch.onnx's nn.GELU
        nodes += [helper.make_node("Mul", ["h", "s"], ["p"]), helper.make_node("Mul", ["p", "half"], ["y"])]
    elif form == "half-of-sum":  # h * (s * 0.5)
        nodes += [helper.make_node("Mul", ["s", "half"], ["p"]), helper.make_node("Mul", ["h", "p"], ["y"])]
    else:  # (h * 0.5) * s
        nodes += [helper.make_node("Mul", ["h", "half"], ["p"]), helper.make_node("Mul", ["p", "s"], ["y"])]
    return nodes, [half, root, one, inv]


def _mlp(form: str, extra_output: str | None = None, half_value: float = 0.5):
    """x [N, 4, D] -> MatMul + bias -> GELU -> "y"; optionally an intermediate as a second output."""
    nodes, inits = _gelu_nodes(form, half_value)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["h"]), *nodes]
    inits += [
        init("w", rng().standard_normal((D, D)).astype(np.float32)),
        init("b", rng().standard_normal(D).astype(np.float32)),
    ]
    outputs = [vinfo("y", ["N", 4, D])] + ([vinfo(extra_output, ["N", 4, D])] if extra_output else [])
    return make_model(nodes, [vinfo("x", ["N", 4, D])], outputs, inits)


@pytest.mark.parametrize("form", ["torch", "mul-by-inverse", "half-of-sum", "half-first"])
def test_each_spelling_becomes_one_gelu_post_op_and_matches_onnxruntime(form):
    _assert_one_dense_with(_mlp(form), "gelu")


def _assert_one_dense_with(proto, post_op: str) -> None:
    """The FP32 optimisation leaves one Dense with `post_op`, and the engine's answer is onnxruntime's."""
    x = rng().standard_normal((3, 4, D)).astype(np.float32) * 2
    want = run_ort(proto, {"x": x})["y"]
    model = optimize_fp32(ir.serde.deserialize_model(proto))
    assert [n.op_type for n in model.graph] == ["Dense"]
    assert list(next(iter(model.graph)).attributes["post_ops"].as_strings()) == [post_op]
    np.testing.assert_allclose(Predictor(model, num_threads=1).run(x), want, rtol=1e-5, atol=1e-5)


def test_a_shared_intermediate_is_left_as_written():
    model = ir.serde.deserialize_model(_mlp("torch", extra_output="e"))
    assert not FuseGeluPatternPass()(model).modified
    assert "Erf" in [n.op_type for n in model.graph]


def test_another_function_of_erf_is_not_taken_for_gelu():
    model = ir.serde.deserialize_model(_mlp("torch", half_value=0.25))
    assert not FuseGeluPatternPass()(model).modified


def _tanh_mlp(cube: str):
    """x -> MatMul + bias -> 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3))), the cube as torch writes it
    (h * (h * h)) or as Pow(h, 3)."""
    c = {"half": 0.5, "one": 1.0, "k": math.sqrt(2 / math.pi), "a": 0.044715, "three": 3.0}
    cube_nodes = (
        [helper.make_node("Mul", ["h", "h"], ["hh"]), helper.make_node("Mul", ["h", "hh"], ["h3"])]
        if cube == "mul"
        else [helper.make_node("Pow", ["h", "three"], ["h3"])]
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["h"]),
        *cube_nodes,
        helper.make_node("Mul", ["a", "h3"], ["ah3"]),
        helper.make_node("Add", ["h", "ah3"], ["inner"]),
        helper.make_node("Mul", ["k", "inner"], ["u"]),
        helper.make_node("Tanh", ["u"], ["t"]),
        helper.make_node("Add", ["one", "t"], ["s"]),
        helper.make_node("Mul", ["h", "s"], ["p"]),
        helper.make_node("Mul", ["half", "p"], ["y"]),
    ]
    inits = [init(name, np.array(v, np.float32)) for name, v in c.items()]
    inits += [
        init("w", rng().standard_normal((D, D)).astype(np.float32)),
        init("b", rng().standard_normal(D).astype(np.float32)),
    ]
    return make_model(nodes, [vinfo("x", ["N", 4, D])], [vinfo("y", ["N", 4, D])], inits)


@pytest.mark.parametrize("cube", ["mul", "pow"])
def test_the_tanh_approximation_becomes_a_gelu_tanh_post_op_and_matches_onnxruntime(cube):
    _assert_one_dense_with(_tanh_mlp(cube), "gelu_tanh")
