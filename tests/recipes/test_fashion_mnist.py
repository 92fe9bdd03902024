"""The Fashion-MNIST adapter on small idx files written here from the format spec, and on the real package."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from examples import fashion_mnist as fm
from int8kit.data import idx
from int8kit.data.compact_format import CompactReader
from int8kit.errors import DataError

from ._idx import idx_bytes, write_split


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    root = tmp_path / "fmnist"
    write_split(root, "test", images, labels)
    return root, images, labels


def test_compact_file_holds_the_idx_pixels_labels_and_train_statistics(synthetic, tmp_path):
    root, images, labels = synthetic
    out = fm.fashion_mnist_to_compact("test", tmp_path / "test.i8k", root=root)
    reader = CompactReader(out)
    assert reader.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(reader.pixels(0, len(images))[:, 0], images)
    np.testing.assert_array_equal(reader.labels, labels.astype(np.int64))
    assert reader.header.mean == fm.MEAN and reader.header.std == fm.STD
    expected = (images[:2, None].astype(np.float64) / 255 - fm.MEAN[0]) / fm.STD[0]
    np.testing.assert_allclose(reader.batch(0, 2), expected, atol=1e-6)


def test_limit_and_resize_to_32(synthetic, tmp_path):
    root, images, labels = synthetic
    out = fm.fashion_mnist_to_compact("test", tmp_path / "t32.i8k", size=32, root=root, limit=3)
    reader = CompactReader(out)
    assert len(reader) == 3 and reader.image_shape == (1, 32, 32)
    for i in range(3):
        ref = np.asarray(Image.fromarray(images[i]).resize((32, 32), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(reader.pixels(i, 1)[0, 0], ref)
    np.testing.assert_array_equal(reader.labels, labels[:3])


def test_plain_uncompressed_idx_is_read(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "plain-idx3-ubyte"
    path.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(idx.read_idx(path, 3), array)


def test_missing_folder_names_the_apt_package(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        fm.load_split("train", tmp_path / "absent")


def test_missing_file_is_named(synthetic):
    root, _, _ = synthetic
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: idx file not found"):
        fm.load_split("test", root)


def test_bad_magic(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    # A 3-dim file where a 1-dim one is expected, then a float (0x0D) file.
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2, 2), np.uint8))))
    with pytest.raises(DataError, match=r"x-idx1-ubyte.gz: bad idx magic 00000803"):
        idx.read_idx(path, 1)
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + b"\0" * 4))
    with pytest.raises(DataError, match="bad idx magic 00000d01"):
        idx.read_idx(path, 1)


def test_truncated_data_and_truncated_gzip(tmp_path):
    data = idx_bytes(np.ones((4, 28, 28), np.uint8))
    path = tmp_path / "short-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(DataError, match=r"short-idx3-ubyte.gz: .*\(4, 28, 28\).*truncated"):
        idx.read_idx(path, 3)
    path.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        idx.read_idx(path, 3)
    path.write_bytes(gzip.compress(data[:9]))
    with pytest.raises(DataError, match="truncated idx header"):
        idx.read_idx(path, 3)


def test_image_and_label_counts_must_agree(tmp_path):
    root = tmp_path / "r"
    write_split(root, "train", np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="3 images but .*train-labels-idx1-ubyte.gz has 2 labels"):
        fm.load_split("train", root)


def test_label_outside_the_ten_classes(tmp_path):
    root = tmp_path / "r"
    write_split(root, "train", np.zeros((2, 28, 28), np.uint8), np.array([3, 10], np.uint8))
    with pytest.raises(DataError, match="label 10 outside the 10 classes"):
        fm.load_split("train", root)


@pytest.mark.skipif(not fm.DEFAULT_ROOT.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_package_splits_and_statistics():
    train_x, train_y = fm.load_split("train")
    test_x, test_y = fm.load_split("test")
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    # The dataset is balanced: 6,000 training and 1,000 test images per class.
    np.testing.assert_array_equal(np.bincount(train_y), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(test_y), np.full(10, 1000))
    pixels = train_x.astype(np.float64) / 255
    assert pixels.mean() == pytest.approx(fm.MEAN[0], abs=1e-9)
    assert pixels.std() == pytest.approx(fm.STD[0], abs=1e-9)


def test_the_demo_normalises_as_this_recipe():
    from int8kit.commands import demo

    assert (demo.MEAN, demo.STD, demo.FASHION_MNIST) == (fm.MEAN, fm.STD, fm.DEFAULT_ROOT)
