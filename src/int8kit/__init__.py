"""int8kit: FP32 ONNX image classifiers to fast, accurate INT8 on Intel CPUs, with oneDNN.

import int8kit
qdq = int8kit.quantize("model.onnx", "calib.npy", int8kit.QuantizeConfig(method="kl"))
int8 = int8kit.convert_model(qdq, int8kit.ConvertConfig())
int8kit.save_model(int8, "model_int8.onnx")
logits = int8kit.Predictor("model_int8.onnx", num_threads=2).run(images)

README.md's "Python API" has the runnable version (on the shipped example model).
"""

import logging

from int8kit.errors import ConfigError, DataError, InputError, Int8kitError, ModelError, UnsupportedOpError

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

# Heavy modules load on first use, so `import int8kit` (and the CLI's --help) stays fast.
_LAZY = {
    "Predictor": ("int8kit.runtime.predictor", "Predictor"),
    "QuantizeConfig": ("int8kit.quantize.api", "QuantizeConfig"),
    "quantize_model": ("int8kit.quantize.api", "quantize_model"),
    "ConvertConfig": ("int8kit.convert.config", "ConvertConfig"),
    "Scope": ("int8kit.scope", "Scope"),
    "save_model": ("int8kit.ir.save", "save_model"),  # onnx_ir Model or ModelProto, written atomically
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name == "quantize":  # the callable subpackage int8kit.quantize
        import importlib

        return importlib.import_module("int8kit.quantize")
    raise AttributeError(f"module 'int8kit' has no attribute {name!r}")


def convert_model(model, config=None):
    """Convert a QDQ model (path, ModelProto or onnx_ir Model) to an INT8 onnx_ir Model."""
    from int8kit.convert.pipeline import convert

    return convert(model, config).model


__all__ = [
    "ConfigError",
    "ConvertConfig",
    "DataError",
    "InputError",
    "Int8kitError",
    "ModelError",
    "Predictor",
    "QuantizeConfig",
    "Scope",
    "UnsupportedOpError",
    "__version__",
    "convert_model",
    "quantize",
    "quantize_model",
    "save_model",
]
