"""Intake runs once per model through quantize -> accuracy budget -> convert -> Predictor.

Counted by wrapping the passes themselves: the intake pipeline's last pass (MarkIntakePass) for whole
intakes, and the opset upgrade (the first cleanup step, which convert also runs on each QDQ model it is
given) for every model any pipeline normalises.
"""

import numpy as np
import onnx

from int8kit.budget import BudgetConfig, fit_accuracy_budget
from int8kit.data.open_data import open_dataset
from int8kit.data.seed_format import write_seed
from int8kit.ir import intake, upgrade_opset
from int8kit.models import zoo
from int8kit.quantize.api import QuantizeConfig, quantize_with_report


def test_one_intake_for_quantize_budget_convert_and_predictor(tmp_path, monkeypatch):
    import int8kit.convert.pipeline as pipeline
    from int8kit.runtime.predictor import Predictor

    fp32 = tmp_path / "fp32.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    labels = Predictor(fp32, num_threads=1).run(x).argmax(1)
    data = open_dataset(write_seed(tmp_path / "labelled.bin", x, labels))

    counts = {"intake": 0, "upgrade": 0, "convert": 0}

    def counting(cls, key):
        original = cls.call

        def call(self, model):
            counts[key] += 1
            return original(self, model)

        monkeypatch.setattr(cls, "call", call)

    counting(intake.MarkIntakePass, "intake")
    counting(upgrade_opset.UpgradeOpsetPass, "upgrade")
    convert = pipeline.convert

    def counted_convert(*args, **kwargs):
        counts["convert"] += 1
        return convert(*args, **kwargs)

    monkeypatch.setattr(pipeline, "convert", counted_convert)

    result = quantize_with_report(
        fp32, x, QuantizeConfig(method="percentile", percentile=60.0, num_samples=32, num_threads=1)
    )
    assert counts == {"intake": 1, "upgrade": 1, "convert": 0}  # calibration's Predictor did not re-run it
    config = BudgetConfig(max_drop=0.0, batch_size=16, num_threads=1, fallback="fp32", speed_seconds=0.05)
    budget = fit_accuracy_budget(result.fp32, result.model, data, config)
    final = pipeline.convert(budget.model.clone()).model
    Predictor(final, num_threads=1).run(x[:4])
    assert counts["intake"] == 1  # the FP32 model: once, in quantize
    # Every other normalisation is convert's, once for each QDQ model it is given.
    assert counts["upgrade"] == 1 + counts["convert"] and counts["convert"] >= 2
