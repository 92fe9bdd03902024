"""Quant-aware training: fine-tune an FP32 ONNX model under int8kit's own fake-quant, export a QDQ model."""
