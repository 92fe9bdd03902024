"""Paddle inference models (program protobuf + parameters, PaddleSlim fake-quant) read without paddle."""

from int8kit.paddle.reader import PaddleReadConfig, is_paddle_model, load_paddle_model, read_paddle_parts

__all__ = ["PaddleReadConfig", "is_paddle_model", "load_paddle_model", "read_paddle_parts"]
