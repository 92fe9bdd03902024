"""`Predictor`: load an ONNX model once, run it on numpy arrays with oneDNN.

FP32 models are optimised at load (intake + fusions); models int8kit already optimised or converted
(metadata `int8kit.optimized`) run as they are. A program is compiled per input shape and cached,
so any batch size works without reconverting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import onnx
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import InputError
from int8kit.runtime import dnnl
from int8kit.runtime.compile import Builder, Program, WeightCache, supported_ops

logger = logging.getLogger(__name__)

ModelLike = str | os.PathLike | onnx.ModelProto | ir.Model


def prepare_model(model: ModelLike, extra_outputs: Sequence[str] = ()) -> ir.Model:
    """The graph the engine runs: loaded, checked, and optimised unless int8kit already did that."""
    from int8kit.ir.check_supported import check_supported
    from int8kit.ir.load import as_ir_model

    graph_model = as_ir_model(model)
    if extra_outputs:
        _expose_outputs(graph_model, extra_outputs)
    if ops.OPTIMIZED_KEY not in graph_model.metadata_props:
        from int8kit.ir.optimize import optimize_fp32

        graph_model = optimize_fp32(graph_model)
    check_supported(graph_model, supported_ops())
    return graph_model


def _expose_outputs(model: ir.Model, names: Sequence[str]) -> None:
    """Make intermediate values graph outputs (calibration reads them); fusions then keep them."""
    by_name = {v.name: v for node in model.graph for v in node.outputs if v is not None}
    by_name.update({v.name: v for v in model.graph.inputs})
    present = {v.name for v in model.graph.outputs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"extra outputs not in the model: {', '.join(missing)}")
    for name in names:
        if name not in present:
            model.graph.outputs.append(by_name[name])
            present.add(name)


class Predictor:
    """Runs an ONNX image classifier (FP32, or INT8 converted by int8kit) on the CPU with oneDNN.

    A Predictor owns one arena of intermediate buffers per input shape, so it is not thread-safe:
    use one Predictor per Python thread (they can share nothing but the model file).
    """

    def __init__(self, model: ModelLike, num_threads: int | None = None, extra_outputs: Sequence[str] = ()):
        self.model = prepare_model(model, extra_outputs)
        self.num_threads = num_threads or dnnl.get_num_threads()
        graph = self.model.graph
        self._inputs = [v for v in graph.inputs if v.const_value is None]
        self.input_names = [v.name for v in self._inputs]
        self.output_names = [v.name for v in graph.outputs]
        self._weights = WeightCache()
        self._programs: dict[tuple, Program] = {}

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a single-input model; return its first output."""
        if len(self.input_names) != 1:
            raise InputError(f"the model has {len(self.input_names)} inputs {self.input_names}: use run_dict")
        return self.run_dict({self.input_names[0]: x})[self.output_names[0]]

    def run_dict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = self._check_inputs(inputs)
        dnnl.set_num_threads(self.num_threads)
        return self.program({k: v.shape for k, v in feeds.items()}).run(feeds)

    def program(self, shapes: dict[str, tuple[int, ...]]) -> Program:
        """The compiled program for these input shapes (compiled on first use)."""
        key = tuple(tuple(shapes[n]) for n in self.input_names)
        prog = self._programs.get(key)
        if prog is None:
            dnnl.set_num_threads(self.num_threads)
            prog = Builder(self.model.graph, dict(shapes), self._weights).compile()
            self._programs[key] = prog
            logger.info("compiled %d primitives for input shapes %s", len(prog.steps), key)
        return prog

    def kernels(self, x_shape: tuple[int, ...] | None = None) -> list[tuple[str, str]]:
        """(node, oneDNN implementation) for every primitive of the program for one input shape."""
        shape = x_shape or next(iter(self._programs))[0]
        prog = self.program({self.input_names[0]: tuple(shape)})
        return list(zip(prog.labels, prog.impls, strict=True))

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        unknown = set(inputs) - set(self.input_names)
        missing = [n for n in self.input_names if n not in inputs]
        if unknown or missing:
            raise InputError(
                f"inputs {sorted(inputs)} do not match the model's {self.input_names}"
                + (f" (missing {missing})" if missing else "")
            )
        feeds = {}
        for value in self._inputs:
            arr = np.asarray(inputs[value.name])
            expected = value.shape
            if expected is not None:
                dims = list(expected)
                # The batch (first) dim is always free: programs are compiled per shape, so a model exported
                # or converted at batch 1 runs any batch (a Reshape that hard-codes it fails, naming the node).
                bad = len(dims) != arr.ndim or any(
                    isinstance(d, int) and d != s for d, s in list(zip(dims, arr.shape, strict=False))[1:]
                )
                if bad:
                    want = "x".join(str(d) if isinstance(d, int) else str(d or "?") for d in dims)
                    raise InputError(f"input {value.name!r}: expected shape [{want}], got {list(arr.shape)}")
            if arr.dtype != np.float32:
                if not np.issubdtype(arr.dtype, np.number):
                    raise InputError(f"input {value.name!r}: expected float32 data, got {arr.dtype}")
                arr = arr.astype(np.float32)
            feeds[value.name] = np.ascontiguousarray(arr)
        return feeds
