"""Post-training quantization to a standard ONNX QDQ model (see api.py for the steps)."""

from int8kit.quantize.api import QuantizeConfig, QuantizeResult, quantize, quantize_model, save_model

__all__ = ["QuantizeConfig", "QuantizeResult", "quantize", "quantize_model", "save_model"]
