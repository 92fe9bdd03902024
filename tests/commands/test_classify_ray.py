"""`int8kit classify --ray-address local` and `int8kit.ray.Int8kitPredictor` on a 2-CPU local Ray.

Skipped when Ray is not installed (`pip install 'int8kit[ray]'`); the `test` extra installs it.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from int8kit.cli import main  # noqa: E402

from ._classify_util import IMAGE_FLAGS, N_IMAGES, make_images, reference_scores, save_model  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classify_ray")
    images = make_images(tmp / "imgs")
    model = save_model(tmp / "tiny.onnx")
    return tmp, images, model, reference_scores(tmp, model, images)


def test_ray_classify_rows_equal_in_process_predictions(setup, local_ray, tmp_path, capsys):
    tmp, images, model, scores = setup
    broken = images[0].parent / "zz_broken.png"
    broken.write_bytes(b"not an image")
    try:
        args = ["classify", "--infer-model", str(model), "--input", str(images[0].parent), "--top-k", "3"]
        assert (
            main(
                [
                    *args,
                    *IMAGE_FLAGS,
                    "--batch-size",
                    "8",
                    "--output",
                    str(tmp_path / "ray.csv"),
                    "--ray-address",
                    "local",
                ]
            )
            == 0
        )
        assert (
            main([*args, *IMAGE_FLAGS, "--batch-size", "8", "--output", str(tmp_path / "local.csv"), "--workers", "1"])
            == 0
        )
    finally:
        broken.unlink()
    err = capsys.readouterr().err
    assert err.count(f"skipped {broken}: cannot decode") == 2  # reported by both, per file
    with open(tmp_path / "ray.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_IMAGES
    assert [r["path"] for r in rows] == [str(p) for p in images]
    assert [int(r["top1"]) for r in rows] == scores.argmax(1).tolist()
    with open(tmp_path / "local.csv", newline="") as f:
        local_rows = list(csv.DictReader(f))
    assert rows[0].keys() == local_rows[0].keys()
    classes = [k for k in rows[0] if k.startswith("top") and not k.endswith("_score")]
    assert [[r[k] for k in ("path", *classes)] for r in rows] == [
        [r[k] for k in ("path", *classes)] for r in local_rows
    ]
    # each process times its FP32 layout policies at compile (runtime.layouts) and may keep a different one:
    # the same scores up to float summation order, not bit for bit
    score_keys = [k for k in rows[0] if k.endswith("_score")]
    np.testing.assert_allclose(
        [[float(r[k]) for k in score_keys] for r in rows],
        [[float(r[k]) for k in score_keys] for r in local_rows],
        rtol=1e-5,
        atol=1e-6,
    )


def test_user_pipeline_with_the_callable_class(setup, local_ray):
    import int8kit.ray

    _, _, model, _ = setup
    x = np.random.default_rng(3).standard_normal((12, 3, 32, 32)).astype(np.float32)
    from int8kit.runtime.predictor import Predictor

    want = Predictor(model, num_threads=1).run(x)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ds = ray.data.from_numpy(x).map_batches(  # from_numpy names the column "data"
        int8kit.ray.Int8kitPredictor,
        fn_constructor_kwargs={"model": str(model), "input_column": "data", "top_k": 2, "keep_scores": True},
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=1,
        batch_size=5,
        batch_format="numpy",
    )
    out = {k: np.concatenate([b[k] for b in ds.iter_batches(batch_format="numpy")]) for k in ("top1", "scores")}
    np.testing.assert_array_equal(out["top1"], want.argmax(1))
    # batches of 5 and 2 run programs compiled for their own shapes, whose FP32 layouts may differ from the
    # batch-12 program's (runtime.layouts): the same values up to float summation order
    np.testing.assert_allclose(out["scores"], want, rtol=1e-5, atol=1e-6)
