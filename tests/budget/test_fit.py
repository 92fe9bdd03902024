"""The accuracy budget: rank once, bisect the fallback prefix, and the prefix it picks is the shortest that passes.

Each claim is checked against an independent measurement: the test converts the QDQ model with a given
prefix excluded itself and counts top-1 with its own Predictor.
"""

import math

import numpy as np
import onnx
import pytest

from int8kit.budget import BudgetConfig, fit_accuracy_budget
from int8kit.budget.precision import fallback_precisions
from int8kit.convert.pipeline import convert
from int8kit.data.open_data import open_dataset
from int8kit.data.seed_format import write_seed
from int8kit.errors import ConfigError
from int8kit.models import zoo
from int8kit.quantize.api import QuantizeConfig, quantize_model
from int8kit.quantize.keep_fp32 import KEEP_FP32_KEY, keep_fp32
from int8kit.runtime.predictor import Predictor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("budget")
    fp32 = tmp / "fp32.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    x = np.random.default_rng(0).standard_normal((48, 3, 32, 32)).astype(np.float32)
    labels = Predictor(fp32, num_threads=1).run(x).argmax(1)  # FP32 is 100% right by construction
    data_path = write_seed(tmp / "labelled.bin", x, labels)
    # A deliberately bad calibration (clip at the 60th percentile) so INT8 loses accuracy; the converter honours
    # the file exactly, so every clipped tensor costs accuracy until its layers fall back.
    qdq = quantize_model(fp32, x, QuantizeConfig(method="percentile", percentile=60.0, num_samples=48))
    return fp32, data_path, qdq, x, labels


def _top1(qdq: onnx.ModelProto, names, x, labels) -> float:
    """Top-1 (percent) of `qdq` with `names` excluded, converted and run here, independently of the budget."""
    model = convert(keep_fp32(qdq, tuple(names))).model
    return 100.0 * float(np.mean(Predictor(model, num_threads=1).run(x).argmax(1) == labels))


def test_keep_fp32_marks_named_nodes_and_rejects_unknown_names(setup):
    _, _, qdq, _, _ = setup
    conv = next(n.name for n in qdq.graph.node if n.op_type == "Conv")
    marked = keep_fp32(qdq, (conv,))
    node = next(n for n in marked.graph.node if n.name == conv)
    assert {p.key: p.value for p in node.metadata_props}[KEEP_FP32_KEY] == "1"
    assert not any(p.key == KEEP_FP32_KEY for n in qdq.graph.node for p in n.metadata_props)  # a copy
    summary = convert(marked).summary
    assert any(op.name == conv and "kept FP32" in op.reason for op in summary.fp32_reasons)
    with pytest.raises(ConfigError, match="no node named nope"):
        keep_fp32(qdq, ("nope",))


def test_bisection_picks_the_shortest_passing_prefix_of_the_ranking(setup):
    fp32, data_path, qdq, x, labels = setup
    config = BudgetConfig(max_drop=0.0, batch_size=16, num_threads=1, fallback="fp32", speed_seconds=0.05)
    result = fit_accuracy_budget(fp32, qdq, open_dataset(data_path), config)
    assert result.fp32_top1 == 100.0 and result.rounds[0].drop > 0, "the bad calibration should lose accuracy"
    assert result.met and result.chosen.passed and result.chosen.drop <= 0.0
    k = len(result.chosen.fallback)
    order = [name for name, _ in result.ranking]
    assert k > 0 and result.chosen.fallback == tuple(order[:k])
    # Ranked once, worst SQNR first (data ops, not measured, last).
    sqnr = [db for _, db in result.ranking if not math.isnan(db)]
    assert sqnr == sorted(sqnr)
    # Independently: the chosen prefix meets the budget, one layer fewer does not.
    assert _top1(qdq, order[:k], x, labels) == pytest.approx(result.chosen.top1) == 100.0
    assert _top1(qdq, order[: k - 1], x, labels) < 100.0
    # Bisection, not one layer per round: at most 1 (full INT8) + 1 (all out) + ceil(log2 n) rounds.
    n = len(order)
    assert len(result.rounds) <= 2 + math.ceil(math.log2(n))
    assert len({len(r.fallback) for r in result.rounds}) == len(result.rounds)  # no prefix measured twice
    assert result.rounds[0].rounds_left >= len(result.rounds) - 1  # the ETA bound never undercounts
    # The written QDQ model marks exactly the chosen layers; the summary accounts for every ranked layer.
    marked = {n.name for n in result.model.graph if n.metadata_props.get(KEEP_FP32_KEY) == "1"}
    assert marked == set(result.chosen.fallback) == set(result.fp32_layers)
    assert set(result.int8_layers) | marked == set(order) and not set(result.int8_layers) & marked
    assert result.speed is not None and min(result.speed.fp32, result.speed.int8, result.speed.mixed) > 0


def test_fp32_fallback_is_always_available_and_bf16_needs_the_converter():
    assert fallback_precisions("fp32") == ("fp32",)
    assert fallback_precisions("auto")[-1] == "fp32"


def test_bf16_fallback_runs_the_chosen_convolutions_bf16(setup):
    from int8kit.budget.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bf16 kernels on this CPU")
    fp32, data_path, qdq, x, labels = setup
    config = BudgetConfig(max_drop=0.0, batch_size=16, num_threads=1, fallback="bf16", speed_seconds=0)
    result = fit_accuracy_budget(fp32, qdq, open_dataset(data_path), config)
    assert result.met and result.chosen.precision == "bf16" and result.bf16_layers
    precision = {n.name: n.attributes.get("precision") for n in result.converted.graph}
    assert all(precision[name] is not None and precision[name].as_string() == "bf16" for name in result.bf16_layers)
    assert set(result.bf16_layers) | set(result.fp32_layers) == set(result.chosen.fallback)
    # Independently: the converted model the budget returns scores what the round measured.
    got = Predictor(result.converted, num_threads=1).run(x).argmax(1)
    assert 100.0 * float(np.mean(got == labels)) == pytest.approx(result.chosen.top1)
