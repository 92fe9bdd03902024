"""Exceptions int8kit raises for bad input. Each message names the file, node or line at fault."""


class Int8kitError(Exception):
    """Base class: the CLI prints these as one clear line and exits with status 2."""


class ModelError(Int8kitError):
    """A model file is missing, corrupt or not a valid ONNX graph."""


class UnsupportedOpError(Int8kitError):
    """A node whose op type (or attribute combination) the engine cannot run."""


class InputError(Int8kitError):
    """An input array does not fit the model (shape, dtype, name)."""


class DataError(Int8kitError):
    """A data file, image folder or label list is missing, truncated or inconsistent."""


class ConfigError(Int8kitError):
    """Options that contradict each other or name things that do not exist."""
