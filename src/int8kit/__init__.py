"""int8kit: FP32 ONNX image classifiers to fast, accurate INT8 on Intel CPUs, with oneDNN."""

import logging

from int8kit.errors import ConfigError, DataError, InputError, Int8kitError, ModelError, UnsupportedOpError

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "Int8kitError",
    "ModelError",
    "UnsupportedOpError",
    "__version__",
]
