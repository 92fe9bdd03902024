"""`int8kit benchmark`: layouts benchmark_app would pick, JSON keys and numbers consistent with each other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from int8kit.cli import main
from int8kit.models import zoo
from int8kit.runtime import dnnl
from int8kit.runtime.streams import available_cores

CORES = len(available_cores())


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return zoo.save("resnet_tiny", tmp_path_factory.mktemp("bench") / "tiny.onnx", size=16)


def bench(model, tmp_path, *extra: str) -> dict:
    out = tmp_path / "b.json"
    assert main(["benchmark", "--infer-model", str(model), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_throughput_auto_fills_the_cores_and_reports_benchmark_app_keys(model, tmp_path, capsys):
    r = bench(model, tmp_path, "--niter", "24", "--batch-size", "3")
    assert (r["streams"], r["threads_per_stream"]) == (CORES, 1)
    assert r["requests"] >= 24 and r["images"] == 3 * r["requests"]
    assert r["throughput_ips"] == pytest.approx(r["images"] / r["duration_s"])
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r["isa"] == dnnl.effective_isa()
    assert r["environment"]["cpu_count"] and "versions" in r["environment"]
    printed = capsys.readouterr().out
    assert "throughput (img/s)" in printed and f"{r['throughput_ips']:.2f}" in printed


def test_latency_mode_is_one_stream_of_all_cores(model, tmp_path):
    r = bench(model, tmp_path, "--mode", "latency", "--niter", "10")
    assert (r["streams"], r["threads_per_stream"], r["requests"]) == (1, CORES, 10)
    assert r["batch_parts"] == 1  # batch 1: nothing to split
    # one request at a time: the wall time covers every request's latency
    assert r["duration_s"] * 1000 >= r["latency_ms"]["mean"] * 10 * 0.99


def test_latency_mode_reports_a_batch_split_across_its_threads(model, tmp_path, capsys):
    r = bench(model, tmp_path, "--mode", "latency", "--num-threads", "2", "--batch-size", "4", "--niter", "4")
    assert (r["streams"], r["threads_per_stream"], r["batch_parts"]) == (1, 2, 2)
    assert "each batch as 2 one-thread parts" in capsys.readouterr().out


def test_explicit_streams_threads_and_time(model, tmp_path):
    r = bench(model, tmp_path, "--streams", "2", "--num-threads", "1", "--time", "0.3")
    assert (r["streams"], r["threads_per_stream"]) == (2, 1)
    assert r["duration_s"] >= 0.3 and r["requests"] > 0


def test_infer_data_file_is_used(model, tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).standard_normal((5, 3, 16, 16)).astype(np.float32))
    r = bench(model, tmp_path, "--infer-data", str(data), "--batch-size", "2", "--niter", "4", "--streams", "1")
    assert r["requests"] == 4 and r["config"]["data"] == str(data)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--streams", "0"], "streams must be at least 1"),
        (["--batch-size", "0"], "batch-size must be at least 1"),
        (["--num-threads", "0"], "num-threads must be at least 1"),
    ],
)
def test_bad_options_exit_2_with_one_line(model, capsys, extra, message):
    """argparse rejects some (SystemExit 2, usage + one error line), ConfigError the others (return 2)."""
    try:
        code = main(["benchmark", "--infer-model", str(model), "--niter", "1", *extra])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_missing_model_is_one_line(tmp_path, capsys):
    assert main(["benchmark", "--infer-model", str(tmp_path / "no.onnx"), "--niter", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no.onnx" in err and "not found" in err and len(err.splitlines()) == 1
