"""int8kit.data.idx: a generic idx reader (files written from the format spec), split naming, exact
pixel statistics; and on the real Fashion-MNIST package, the statistics the examples and the demo use."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from int8kit.commands import demo
from int8kit.data import idx
from int8kit.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_a_split_reads_gzip_or_plain_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.array([0, 3, 1, 2, 9], np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(labels))  # plain, as some mirrors ship it
    got_images, got_labels = idx.load_idx_split(tmp_path, "train")
    np.testing.assert_array_equal(got_images, images)
    assert got_labels.dtype == np.int64 and got_labels.tolist() == labels.tolist()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: idx file not found"):
        idx.load_idx_split(tmp_path, "test")


def test_pixel_statistics_are_numpys_mean_and_std_of_pixels_over_255():
    images = np.random.default_rng(1).integers(0, 256, (50, 7, 7), dtype=np.uint8)
    mean, std = idx.pixel_statistics(images)
    ref = images.astype(np.float64) / 255.0
    assert mean == pytest.approx(ref.mean(), abs=1e-12) and std == pytest.approx(ref.std(), abs=1e-12)


@pytest.mark.skipif(not demo.FASHION_MNIST.is_dir(), reason="needs apt package dataset-fashion-mnist")
def test_the_demo_and_qat_normalise_fashion_mnist_as_the_models_were_trained():
    images, _ = idx.load_idx_split(demo.FASHION_MNIST, "train")
    mean, std = idx.pixel_statistics(images)
    assert (mean,) == pytest.approx(demo.MEAN, abs=1e-12) and (std,) == pytest.approx(demo.STD, abs=1e-12)
