"""bench/bench_zoo.py end to end on a tiny run: results per engine in the JSON, ratios from them, and the
per-model timeout reporting "timeout" instead of hanging."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "bench" / "bench_zoo.py"
TINY = ["--models=squeezenet1_1", "--size=32", "--batch=1,2", "--seconds=0", "--min-runs=2", "--warmup=1"]


def _bench(tmp_path, *args: str, timeout: float = 300) -> dict:
    out = tmp_path / "out.json"
    env_cache = {"INT8KIT_ZOO_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, *args, f"--json={out}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env_cache},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_runs_the_engines_and_reports_ratios(tmp_path):
    record = _bench(tmp_path, "--engines=int8kit-fp32,onnxruntime-fp32,int8kit-int8,onnxruntime-int8")
    results = {(r["batch"], r["engine"]): r for r in record["results"]}
    assert set(results) == {
        (b, e) for b in (1, 2) for e in ("int8kit-fp32", "onnxruntime-fp32", "int8kit-int8", "onnxruntime-int8")
    }
    for r in results.values():
        assert r["status"] == "ok" and r["runs"] >= 2 and r["images_per_s"] > 0, r
    for r in results.values():  # the median of 9 interleaved rounds (the default)
        assert len(r["round_rates"]) == 9 and r["images_per_s"] == pytest.approx(statistics.median(r["round_rates"]))
    for row in record["ratios"]:
        b = row["batch"]
        int8, fp32 = results[(b, "int8kit-int8")]["round_rates"], results[(b, "int8kit-fp32")]["round_rates"]
        pairs = zip(int8, fp32, strict=True)
        assert row["int8kit int8/fp32"] == pytest.approx(statistics.median(a / f for a, f in pairs))
        assert row["fp32 int8kit/openvino"] is None  # OpenVINO was not asked for
    assert record["environment"]["onednn"]["isa"] and record["environment"]["cpu"]


def test_a_model_over_its_time_limit_is_a_timeout(tmp_path):
    record = _bench(tmp_path, "--engines=onnxruntime-fp32", "--timeout=0.01", timeout=60)
    assert [r["status"] for r in record["results"]] == ["timeout", "timeout"]
