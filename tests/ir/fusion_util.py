"""Helpers for the fusion tests: ONNX-text models with random weights, and a reference lowering.

`lower` rewrites int8kit.Conv/Dense back into standard ONNX ops following the op contract in
int8kit/ops.py (Conv/Gemm, then each post-op in order), so onnxruntime can check that a fused graph
computes what the original did, independently of int8kit's own runtime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import helper, numpy_helper

from int8kit import ops
from int8kit.ir.infer_shapes import InferShapesPass


def build(text: str, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Parse an ONNX-text model; every node is named after its first output; `weights` become initializers."""
    model = onnx.parser.parse_model(text)
    for node in model.graph.node:
        node.name = node.output[0]
    for name, array in weights.items():
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    onnx.checker.check_model(model, full_check=True)
    return model


def prepare(proto: onnx.ModelProto) -> ir.Model:
    """The proto as an ir.Model with inferred shapes (what the fusion passes see after intake)."""
    model = ir.serde.deserialize_model(proto)
    InferShapesPass()(model)
    return model


def nodes(model: ir.Model) -> dict[str, ir.Node]:
    return {node.name: node for node in model.graph}


def kinds(model: ir.Model) -> list[str]:
    return [f"{node.domain + '.' if node.domain else ''}{node.op_type}" for node in model.graph]


def post_ops(node: ir.Node) -> list[str]:
    return list(node.attributes["post_ops"].as_strings())


def lower(model: ir.Model) -> onnx.ModelProto:
    """A standard-ONNX equivalent of `model`: each int8kit Conv/Dense expanded per the ops.py contract."""
    proto = ir.serde.serialize_model(model)
    out_nodes, extra_inits = [], []
    for node in proto.graph.node:
        if node.domain != ops.DOMAIN:
            out_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        chain = ops.decode_post_ops([s.decode() for s in attrs.get("post_ops", [])])
        x, w, *rest = node.input
        b = rest[0] if rest and rest[0] else None
        total = node.output[0]
        tmp = f"{node.name}__lowered"
        if node.op_type == "Conv":
            inputs = [x, w] + ([b] if b else [])
            conv_attrs = {k: attrs[k] for k in ("strides", "pads", "dilations", "group")}
            out_nodes.append(helper.make_node("Conv", inputs, [tmp + "0"], **conv_attrs))
        elif node.op_type == "Dense" and attrs.get("axis", 1) != 1:  # a MatMul over the last axis
            out_nodes.append(helper.make_node("Transpose", [w], [tmp + "wt"]))
            out_nodes.append(helper.make_node("MatMul", [x, tmp + "wt"], [tmp + "m" if b else tmp + "0"]))
            if b:
                out_nodes.append(helper.make_node("Add", [tmp + "m", b], [tmp + "0"]))
        elif node.op_type == "Dense":
            out_nodes.append(helper.make_node("Flatten", [x], [tmp + "f"], axis=1))
            inputs = [tmp + "f", w] + ([b] if b else [])
            out_nodes.append(helper.make_node("Gemm", inputs, [tmp + "0"], transB=1))
        elif node.op_type == "Affine":  # X * Scale[c] + Shift[c] along axis 1
            axes = f"{tmp}_axes"
            extra_inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), axes))
            out_nodes += [
                helper.make_node("Unsqueeze", [w, axes], [tmp + "s"]),
                helper.make_node("Unsqueeze", [b, axes], [tmp + "t"]),
                helper.make_node("Mul", [x, tmp + "s"], [tmp + "m"]),
                helper.make_node("Add", [tmp + "m", tmp + "t"], [tmp + "0"]),
            ]
        else:
            raise AssertionError(f"cannot lower {node.op_type}")
        current = tmp + "0"
        for i, p in enumerate(chain):
            nxt = f"{tmp}{i + 1}"
            if p.kind == "sum":
                out_nodes.append(helper.make_node("Add", [current, node.input[3]], [nxt]))
            elif p.kind == "clip":
                lo, hi = f"{nxt}_lo", f"{nxt}_hi"
                extra_inits += [
                    numpy_helper.from_array(np.array(p.params[0], np.float32), lo),
                    numpy_helper.from_array(np.array(p.params[1], np.float32), hi),
                ]
                out_nodes.append(helper.make_node("Clip", [current, lo, hi], [nxt]))
            elif p.kind == "hardsigmoid":
                out_nodes.append(helper.make_node("HardSigmoid", [current], [nxt], alpha=p.params[0], beta=p.params[1]))
            elif p.kind == "leakyrelu":
                out_nodes.append(helper.make_node("LeakyRelu", [current], [nxt], alpha=p.params[0]))
            elif p.kind == "swish":  # x * sigmoid(alpha * x)
                alpha = f"{nxt}_alpha"
                extra_inits.append(
                    numpy_helper.from_array(np.array(p.params[0] if p.params else 1.0, np.float32), alpha)
                )
                out_nodes += [
                    helper.make_node("Mul", [current, alpha], [f"{nxt}_ax"]),
                    helper.make_node("Sigmoid", [f"{nxt}_ax"], [f"{nxt}_sig"]),
                    helper.make_node("Mul", [current, f"{nxt}_sig"], [nxt]),
                ]
            else:
                name = {"relu": "Relu", "hardswish": "HardSwish", "sigmoid": "Sigmoid", "tanh": "Tanh"}[p.kind]
                out_nodes.append(helper.make_node(name, [current], [nxt]))
            current = nxt
        out_nodes.append(helper.make_node("Identity", [current], [total]))
    del proto.graph.node[:]
    proto.graph.node.extend(out_nodes)
    proto.graph.initializer.extend(extra_inits)
    del proto.graph.value_info[:]
    kept = [o for o in proto.opset_import if o.domain != ops.DOMAIN]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_equivalent(original: onnx.ModelProto, fused: ir.Model, feeds, rtol=1e-4, atol=1e-5) -> None:
    """onnxruntime on the original and on the lowered fused model agree on every graph output."""
    lowered = lower(fused)
    assert [o.name for o in lowered.graph.output] == [o.name for o in original.graph.output]
    for want, got in zip(run(original, feeds), run(lowered, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
