"""Post-training quantization to a standard ONNX QDQ model (see api.py for the steps).

The package itself is callable, so the documented one-liner works:
`int8kit.quantize("model.onnx", "calib.bin", QuantizeConfig(method="kl"))` is `quantize_model(...)` and returns
the QDQ model; `quantize_with_report(...)` returns it with what was calibrated (a QuantizeResult).
"""

import sys
import types

from int8kit.quantize.api import QuantizeConfig, QuantizeResult, quantize_model, quantize_with_report

__all__ = ["QuantizeConfig", "QuantizeResult", "quantize_model", "quantize_with_report"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return quantize_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
