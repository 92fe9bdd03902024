"""Accuracy-driven fallback: keep the fewest layers in FP32 until the top-1 drop is within budget.

Calibration runs once; each round converts the QDQ model with the layers chosen so far kept in FP32,
measures top-1 on labelled data, and, while the drop is over budget, adds the INT8 layer with the
worst SQNR against FP32 (the per-layer report of `int8kit compare`). The choice travels in the QDQ
model as node metadata, so `int8kit convert` honours it and onnxruntime ignores it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from int8kit.errors import DataError

logger = logging.getLogger(__name__)

KEEP_FP32_KEY = "int8kit.keep_fp32"  # the converter's place_int8.KEEP_FP32_KEY


@dataclass(frozen=True)
class BudgetRound:
    kept_fp32: tuple[str, ...]
    int8_top1: float
    drop: float


@dataclass(frozen=True)
class BudgetResult:
    model: onnx.ModelProto
    fp32_top1: float
    rounds: tuple[BudgetRound, ...]
    met: bool


def keep_fp32(qdq: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    """A copy of `qdq` in which the nodes called `names` are excluded from quantization.

    As a QDQ tool excludes a node: it reads its activations in float (its inputs skip their Q -> DQ
    pairs) and its weights in float (the dequantized initializers), so the file itself says what runs
    FP32 and every runtime (onnxruntime, the converter) computes the same thing. The node is also marked,
    so the conversion summary names the reason.
    """
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    wanted = set(names)
    graph = out.graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.name not in wanted:
            continue
        node.metadata_props.add(key=KEEP_FP32_KEY, value="1")
        wanted.discard(node.name)
        for i, name in enumerate(node.input):
            node.input[i] = _float_source(name, producer, inits, graph)
    if wanted:
        raise ValueError(f"no node named {', '.join(sorted(wanted))} in the QDQ model")
    _drop_dead_nodes(graph)
    return out


def _float_source(name: str, producer: dict, inits: dict, graph: onnx.GraphProto) -> str:
    """The float tensor a DequantizeLinear output stands for: the QuantizeLinear's input for an activation
    pair, a new float initializer for a quantized weight; other names unchanged."""
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return name
    q = producer.get(dq.input[0])
    if q is not None and q.op_type == "QuantizeLinear":
        return q.input[0]
    if dq.input[0] in inits and all(i in inits for i in dq.input[1:] if i):
        from onnx import numpy_helper

        from int8kit.convert.remove_qdq import dequantize

        arrays = [numpy_helper.to_array(inits[i]) if i else None for i in dq.input]
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        zero_point = arrays[2] if len(arrays) > 2 else None
        value = dequantize(arrays[0], arrays[1], zero_point, axis)
        float_name = f"{name}_fp32"
        if float_name not in inits:
            tensor = numpy_helper.from_array(value, float_name)
            graph.initializer.append(tensor)
            inits[float_name] = tensor
        return float_name
    return name


def _reads_quantized_activations(qdq: onnx.ModelProto) -> list[str]:
    """Names of the nodes (graph order) that read an activation through a Q -> DQ pair."""
    producer = {o: n for n in qdq.graph.node for o in n.output}
    names = []
    for node in qdq.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for name in node.input:
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear" and producer.get(dq.input[0]) is not None:
                names.append(node.name)
                break
    return names


def _drop_dead_nodes(graph: onnx.GraphProto) -> None:
    """Remove Q/DQ nodes nothing reads any more (and initializers only they read)."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [
            n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in used
        ]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def top1(model, data, batch_size: int, num_threads: int | None, limit: int) -> float:
    """Top-1 accuracy (percent) of `model` on the first `limit` labelled images of `data`."""
    from int8kit.evaluate.metrics import topk_correct
    from int8kit.runtime.predictor import Predictor

    labels = getattr(data, "labels", None)
    if labels is None:
        raise DataError("the accuracy budget needs labelled data (a seed or compact data file)")
    predictor = Predictor(model, num_threads=num_threads)
    n = min(limit, len(data))
    correct = 0
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        scores = predictor.run(data.batch(start, count))
        correct += topk_correct(scores, np.asarray(labels[start : start + count]), 1)
    return 100.0 * correct / max(n, 1)


def fit_accuracy_budget(
    fp32_model: str | os.PathLike,
    qdq: onnx.ModelProto,
    data,
    max_drop: float,
    *,
    eval_samples: int = 2000,
    compare_samples: int = 32,
    batch_size: int = 50,
    num_threads: int | None = None,
    max_rounds: int = 32,
    on_round: Callable[[BudgetRound], None] | None = None,
) -> BudgetResult:
    """Keep the worst layers FP32, one per round, until FP32 top-1 minus INT8 top-1 <= max_drop."""
    from int8kit.convert.pipeline import convert, save
    from int8kit.evaluate.layer_error import compare_layers
    from int8kit.quantize.api import prepare, save_model

    kept: tuple[str, ...] = ()
    rounds: list[BudgetRound] = []
    with tempfile.TemporaryDirectory(prefix="int8kit-budget-") as tmp:
        # The intake-normalised FP32 graph names its nodes exactly as the QDQ model does.
        fp32_path = Path(tmp) / "fp32.onnx"
        save_model(prepare(fp32_model), fp32_path)
        fp32_top1 = top1(fp32_path, data, batch_size, num_threads, eval_samples)
        int8_path = Path(tmp) / "int8.onnx"
        for _ in range(max_rounds):
            marked = keep_fp32(qdq, kept)
            if not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in marked.graph.node):
                logger.warning("every quantized op had to fall back: the result is the FP32 model")
                rounds.append(BudgetRound(kept, fp32_top1, 0.0))
                if on_round is not None:
                    on_round(rounds[-1])
                return BudgetResult(marked, fp32_top1, tuple(rounds), max_drop >= 0.0)
            save(convert(marked).model, int8_path)
            acc = top1(int8_path, data, batch_size, num_threads, eval_samples)
            r = BudgetRound(kept, acc, fp32_top1 - acc)
            rounds.append(r)
            logger.info("FP32 layers %s: INT8 top-1 %.2f%% (drop %.2f)", list(kept), acc, r.drop)
            if on_round is not None:
                on_round(r)
            if r.drop <= max_drop:
                return BudgetResult(marked, fp32_top1, tuple(rounds), True)
            n = min(compare_samples, len(data))
            batches = (data.batch(i, min(batch_size, n - i)) for i in range(0, n, batch_size))
            worst = [e for e in compare_layers(fp32_path, int8_path, batches, num_threads) if e.int8]
            worst = [e.name for e in worst if e.name not in kept]
            # Once every compute layer is FP32, the remaining roundings sit on the data ops' inputs (Add,
            # pools, Concat): those fall back next, in graph order.
            worst = worst or [n for n in _reads_quantized_activations(marked) if n not in kept]
            if not worst:
                break
            kept = (*kept, worst[0])
    logger.warning("accuracy budget of %.2f not met with %d layers in FP32", max_drop, len(kept))
    return BudgetResult(keep_fp32(qdq, kept), fp32_top1, tuple(rounds), False)
