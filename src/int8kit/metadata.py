"""Every `int8kit.*` metadata key, defined once beside the op contract (int8kit.ops).

Passes hand facts to later passes through metadata on nodes and values, so the keys are the passes'
interface: each is listed here with who writes it and who reads it. A pass that reads a key declares it
(`reads` on int8kit.ir.contract.ContractPass) and the pass that writes it declares `writes`, so a
misordered pipeline fails before the reader runs, naming the pass and the missing key.
"""

from __future__ import annotations

# -- on models -----------------------------------------------------------------------------------
# "fp32" or "int8": the model was optimised (FP32) or converted, so the runtime runs it as it is.
OPTIMIZED_KEY = "int8kit.optimized"
# "1": the intake passes ran (ir.intake's last pass writes it); intake() and optimize_fp32 then skip them,
# so a model is normalised once however many steps (quantize, budget, convert, Predictor) it goes through.
INTAKE_KEY = "int8kit.intake"
VERSION_KEY = "int8kit.version"  # the int8kit version that wrote a QDQ model
QUANTIZE_CONFIG_KEY = "int8kit.quantize.config"  # JSON of the QuantizeConfig that wrote a QDQ model
QUANTIZE_SAMPLES_KEY = "int8kit.quantize.samples"  # number of calibration samples
QAT_KEY = "int8kit.qat"  # "true" on a QDQ model written by quant-aware training
QAT_CONFIG_KEY = "int8kit.qat.config"

# -- on nodes ------------------------------------------------------------------------------------
ID_KEY = "int8kit.id"  # stable node id (ir.node_ids; the numbers --op-ids-to-skip takes)
ABSORBED_KEY = "int8kit.absorbed"  # names of the nodes a fused node absorbed, in order (fusion passes)
SOURCE_OP_KEY = "int8kit.source_op"  # the ONNX op type a retyped node had (Gemm/MatMul -> Dense): scopes
KEEP_FP32_KEY = "int8kit.keep_fp32"  # "1": the quantizer or a scope keeps this node FP32 (place_int8 reads)
FP32_REASON_KEY = "int8kit.fp32_reason"  # why a node stays FP32 (scope, place_int8; the summary prints it)
PRECISION_KEY = "int8kit.precision"  # "int8" or "fp32", decided by place_int8
OUTPUT_INT8_KEY = "int8kit.output_int8"  # "1" when an INT8 compute op writes INT8 (place_int8)

# -- on values -----------------------------------------------------------------------------------
ENCODING_KEY = "int8kit.encoding"  # a tensor's INT8 encoding from the QDQ file (gather_scales; ir.encoding)
# In value.meta (in memory only): the int8 grid a QDQ file put a weight on (remove_qdq; ir.weight_grid).
GRID_KEY = "int8kit.weight_grid"
GRID_REFUSED_KEY = "int8kit.weight_grid_refused"  # why a weight's grid cannot be held in int8
# In value.meta: the value's concrete shapes under intake's two probe input sizes (ir.infer_shapes), so
# dynamic-size branches compare equal (ir.fusion.same_value_shapes).
PROBE_SHAPES_KEY = "int8kit.probe_shapes"

# -- in model.meta (in memory only) ----------------------------------------------------------------
WRITTEN_KEY = "int8kit.written"  # the metadata keys passes so far declared they wrote (ir.contract)
