"""The accuracy-budget search: the fewest layers out of INT8 that keep the top-1 drop within budget.

Everything that does not change between rounds is built once: the FP32 model (optimised once, its top-1
measured once), the full-INT8 model (converted once) and their Predictors, the evaluation images, and the
layer ranking (SQNR of every INT8 layer against FP32, `compare_layers`, worst first). A round converts the
QDQ model with the first k ranked layers excluded and measures its top-1; bisection over k
(`search.PrefixBisection`) needs about log2(layers) rounds, and no k is measured twice.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx
import onnx_ir as ir

from int8kit.budget.accuracy import EvalSet, Score, score, top1
from int8kit.budget.config import BudgetConfig
from int8kit.budget.precision import bf16_part, convert_config, fallback_precisions
from int8kit.budget.search import PrefixBisection
from int8kit.budget.speed import images_per_second
from int8kit.quantize.keep_fp32 import has_qdq, keep_fp32, reads_quantized_activations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetRound:
    """One measured candidate: the first `len(fallback)` ranked layers out of INT8, run at `precision`."""

    index: int  # 1-based
    precision: str  # "bf16" or "fp32" for the fallback layers ("int8" when there are none)
    fallback: tuple[str, ...]
    top1: float  # percent, on the first `images` evaluation images
    drop: float
    passed: bool
    images: int  # fewer than all when the round stopped once the budget was out of reach
    seconds: float  # this round
    elapsed: float  # since the search started (ranking and FP32 reference included)
    rounds_left: int  # at most, by the bisection bound


@dataclass(frozen=True)
class Speed:
    """Images per second on the same batch."""

    batch: int
    fp32: float
    int8: float
    mixed: float


@dataclass(frozen=True)
class BudgetResult:
    model: ir.Model  # the QDQ model, chosen layers excluded and marked
    converted: ir.Model  # it converted as the budget measured it (bf16 layers placed)
    fp32_top1: float
    int8_top1: float  # full INT8, before any fallback (on rounds[0].images images)
    rounds: tuple[BudgetRound, ...]
    chosen: BudgetRound
    met: bool
    ranking: tuple[tuple[str, float], ...]  # (layer, SQNR dB), worst first; data ops after, SQNR nan
    int8_layers: tuple[str, ...]
    bf16_layers: tuple[str, ...] = ()
    fp32_layers: tuple[str, ...] = ()
    speed: Speed | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass
class _Candidate:
    round: BudgetRound
    qdq: ir.Model
    predictor: object | None
    converted: ir.Model | None


def fit_accuracy_budget(
    fp32_model: str | os.PathLike | onnx.ModelProto | ir.Model,
    qdq: ir.Model | onnx.ModelProto,
    data,
    config: BudgetConfig,
    *,
    on_round: Callable[[BudgetRound], None] | None = None,
) -> BudgetResult:
    """Search the fallback set; `data` is a labelled Dataset (open_dataset), `qdq` quantize's model of `fp32_model`."""
    from int8kit.convert.pipeline import convert
    from int8kit.evaluate.layer_error import compare_layers, layer_predictors
    from int8kit.ir.optimize import optimize_fp32
    from int8kit.quantize.api import prepare
    from int8kit.runtime.predictor import Predictor

    start = time.perf_counter()
    threads = config.num_threads
    images = EvalSet(data, config.eval_samples, config.batch_size)
    # The FP32 graph after the same intake as the QDQ model, so node names line up; optimised once.
    # prepare() is a no-op on quantize's intake'd FP32 model (QuantizeResult.fp32): intake runs once per model.
    fp32_opt = optimize_fp32(prepare(fp32_model).clone())
    if isinstance(qdq, onnx.ModelProto):
        qdq = ir.serde.deserialize_model(qdq)
    int8_full = convert(qdq.clone()).model  # convert works in place; qdq stays the file's model
    fp32 = Predictor(fp32_opt.clone(), num_threads=threads)
    int8 = Predictor(int8_full.clone(), num_threads=threads)
    fp32_top1 = top1(fp32, images)
    logger.info("FP32 top-1 %.2f%% on %d images", fp32_top1, len(images))
    need = len(images) * (fp32_top1 - config.max_drop) / 100 - 1e-9  # correct answers a passing round needs

    rounds: list[BudgetRound] = []
    measured: dict[tuple[str, int], _Candidate] = {}

    def passes(got: Score) -> bool:
        return got.complete and got.correct >= need

    def record(precision: str, names: tuple[str, ...], got: Score, began: float, left: int) -> BudgetRound:
        acc, passed = got.top1, passes(got)
        now = time.perf_counter()
        r = BudgetRound(
            len(rounds) + 1, precision, names, acc, fp32_top1 - acc, passed, got.seen, now - began, now - start, left
        )
        rounds.append(r)
        logger.info(
            "round %d: %d layer(s) %s, top-1 %.2f%% (drop %.2f), %.1f s; at most %d more",
            r.index, len(names), precision.upper(), acc, r.drop, r.seconds, left,
        )  # fmt: skip
        if on_round is not None:
            on_round(r)
        return r

    # Round 1: full INT8, which is also what the layers are ranked on.
    began = time.perf_counter()
    int8_score = score(int8, images, need)
    exposed = layer_predictors(fp32_opt.clone(), int8_full.clone(), threads)  # ranking only: fp32/int8 stay lean
    errors = compare_layers(*exposed, _compare_batches(data, config))
    del exposed
    ranking = _rank(errors, qdq)
    compute = {e.name for e in errors if e.op_type in ("Conv", "Dense")}  # what bf16 can run
    order = [name for name, _ in ranking]
    precisions = fallback_precisions(config.fallback)
    n = len(order)
    searches = [PrefixBisection(n, zero_failed=True) for _ in precisions]
    first = record("int8", (), int8_score, began, 0 if passes(int8_score) else _bound(searches, 0))
    measured[("int8", 0)] = _Candidate(first, qdq, int8, int8_full)
    best: _Candidate | None = measured[("int8", 0)] if first.passed else None

    for stage, precision in enumerate(precisions):
        if best is not None:
            break
        search = searches[stage]
        while (k := search.next()) is not None:
            began = time.perf_counter()
            names = tuple(order[:k])
            marked = keep_fp32(qdq, names)
            runs_at = precision
            if not has_qdq(marked):
                got = Score(round(fp32_top1 * len(images) / 100), len(images), len(images))
                predictor, converted, runs_at = fp32, fp32_opt, "fp32"  # nothing left to quantize: the FP32 model
            else:
                converted = convert(marked.clone(), convert_config(precision, names, compute)).model
                predictor = Predictor(converted, num_threads=threads)
                got = score(predictor, images, need)
            search.record(k, passes(got))
            r = record(runs_at, names, got, began, _bound(searches, stage))
            keep = r.passed or k == n  # a failed round's programs are never run again (k = n: the fallback result)
            measured[(precision, k)] = cand = _Candidate(
                r, marked, predictor if keep else None, converted if keep else None
            )
            if r.passed:
                best = cand
        if best is None:
            logger.info("%s fallback of all %d ranked layers misses the budget", precision.upper(), n)

    met = best is not None
    if best is None:  # the most that fell back, as the old single-step search wrote
        best = measured[(precisions[-1], n)] if n else measured[("int8", 0)]
        logger.warning("accuracy budget of %.2f not met with %d layers out of INT8", config.max_drop, n)
    chosen = best.round
    out = set(chosen.fallback)
    bf16_now = bf16_part(chosen.precision, chosen.fallback, compute)
    speed = None
    if config.speed_seconds > 0:
        batch = images.first_batch()
        ips = images_per_second({"fp32": fp32, "int8": int8, "mixed": best.predictor}, batch, config.speed_seconds)
        speed = Speed(len(batch), ips["fp32"], ips["int8"], ips["mixed"])
    return BudgetResult(
        model=best.qdq,
        converted=best.converted,
        fp32_top1=fp32_top1,
        int8_top1=first.top1,
        rounds=tuple(rounds),
        chosen=chosen,
        met=met,
        ranking=tuple(ranking),
        int8_layers=tuple(name for name in order if name not in out),
        bf16_layers=bf16_now,
        fp32_layers=tuple(name for name in chosen.fallback if name not in bf16_now),
        speed=speed,
    )


def _bound(searches: list[PrefixBisection], stage: int) -> int:
    """Rounds left at most: this stage's bisection, plus every later stage's unless this one has passed."""
    here = searches[stage]
    if here.hi is not None:
        return here.probes_left()
    return here.probes_left() + sum(s.probes_left() for s in searches[stage + 1 :])


def _compare_batches(data, config: BudgetConfig):
    n = min(config.compare_samples, len(data))
    return [data.batch(i, min(config.batch_size, n - i)) for i in range(0, n, config.batch_size)]


def _rank(errors, qdq: ir.Model) -> list[tuple[str, float]]:
    """INT8 layers by SQNR, worst first (compare_layers' order), then the data ops reading quantized tensors.

    Once every compute layer is out of INT8 the remaining roundings sit on the inputs of Add, pools and
    Concat; those come last, in graph order (SQNR nan: compare_layers does not measure them).
    """
    present = {node.name for node in qdq.graph}
    ranked = [(e.name, e.sqnr_db) for e in errors if e.int8 and e.name in present]
    taken = {name for name, _ in ranked}
    return ranked + [(name, math.nan) for name in reads_quantized_activations(qdq) if name not in taken]
