"""Which oneDNN implementations the compiled zoo models use: optimised AVX-512 kernels, no reference code.

A `ref:` implementation or a stray layout reorder would not change any result, only make it many times
slower, so only these checks catch them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from int8kit.models import zoo

MODELS = ["resnet50", "mobilenet_v2"]


def _has_avx512() -> bool:
    from int8kit.runtime import dnnl

    return dnnl.effective_isa().startswith("avx512_core")


needs_avx512 = pytest.mark.skipif(not _has_avx512(), reason="this CPU lacks AVX-512 (oneDNN avx512_core kernels)")


@pytest.fixture(scope="module")
def compiled():
    """(kernels, conv node names) for each full-size model at batch 1."""
    from int8kit.runtime.predictor import Predictor

    out = {}
    for name in MODELS:
        pred = Predictor(zoo.build(name), num_threads=1)
        convs = {n.name for n in pred.model.graph if n.op_type == "Conv"}
        out[name] = (pred.kernels((1, 3, 224, 224)), convs)
    return out


@pytest.mark.full_size
@pytest.mark.parametrize("name", MODELS)
def test_no_reference_kernels(compiled, name):
    kernels, _ = compiled[name]
    slow = [(label, impl) for label, impl in kernels if impl.startswith("ref")]
    assert not slow, f"reference (slow) implementations: {slow}"


@pytest.mark.full_size
@needs_avx512
@pytest.mark.parametrize("name", MODELS)
def test_convolutions_use_avx512_kernels(compiled, name):
    kernels, convs = compiled[name]
    by_label = dict(kernels)
    assert convs and convs <= set(by_label), "every Conv node should be one primitive, labelled by its name"
    not_avx512 = {c: by_label[c] for c in convs if "avx512_core" not in by_label[c]}
    assert not not_avx512, f"convolutions without avx512_core kernels: {not_avx512}"
    impls = Counter(by_label[c].split(":")[0] for c in convs)
    assert all(k.startswith(("brgconv", "brdgmm", "jit")) for k in impls), impls  # JIT kernels, not gemm/ref


@pytest.mark.full_size
@pytest.mark.parametrize("name", MODELS)
def test_layout_stays_blocked_between_layers(compiled, name):
    """Activations keep oneDNN's blocked layout from layer to layer: reorders only at the borders."""
    kernels, _ = compiled[name]
    reorders = [label for label, _ in kernels if label.startswith("reorder")]
    assert len(reorders) <= 2, f"{len(reorders)} layout reorders inside the network: {reorders}"


_VERBOSE_RUN = """
import numpy as np
from int8kit.models import zoo
from int8kit.runtime.predictor import Predictor
pred = Predictor(zoo.build("mobilenet_v2"), num_threads=1, layout_policy="blocked")  # no timing runs
pred.run(np.zeros((1, 3, 224, 224), np.float32))
print("CONVS", sum(n.op_type == "Conv" for n in pred.model.graph))
"""


@pytest.mark.full_size
@needs_avx512
def test_onednn_verbose_shows_avx512_convolutions():
    env = dict(os.environ, ONEDNN_VERBOSE="1", OMP_WAIT_POLICY="passive")
    proc = subprocess.run([sys.executable, "-c", _VERBOSE_RUN], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    execs = [line.split(",") for line in proc.stdout.splitlines() if line.startswith("onednn_verbose,exec,cpu,")]
    conv_impls = [fields[4] for fields in execs if fields[3] == "convolution"]
    n_convs = int(proc.stdout.split("CONVS")[-1])
    assert len(conv_impls) == n_convs, f"{len(conv_impls)} convolution executions for {n_convs} Conv nodes"
    assert all("avx512_core" in impl for impl in conv_impls), Counter(conv_impls)
    assert all(impl.startswith(("brgconv", "brdgmm", "jit")) for impl in conv_impls), Counter(conv_impls)
    assert not [f for f in execs if f[4].startswith("ref")], "reference implementations executed"


def test_kernels_lists_every_step():
    """kernels() on a tiny model: one (label, impl) pair per primitive, labels naming graph nodes."""
    from int8kit.runtime.predictor import Predictor

    pred = Predictor(zoo.build("resnet_tiny"), num_threads=1)
    pred.run(np.zeros((2, 3, 32, 32), np.float32))
    kernels = pred.kernels()
    assert kernels and all(isinstance(impl, str) and impl for _, impl in kernels)
    shape_only = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity")  # views: no primitive
    computing = {n.name for n in pred.model.graph if n.op_type not in shape_only}
    labels = {label for label, _ in kernels}
    assert computing <= labels, f"nodes without a primitive: {computing - labels}"
