"""foolbox's ImageNet photos: labels parsed from `imagenet_<index>_<label>.jpg`, found without importing foolbox."""

from __future__ import annotations

import sys

import imagenet_samples
import pytest

from int8kit.data.label_list import parse_label_list


@pytest.mark.parametrize(
    ("name", "expected"),
    [("imagenet_00_243.jpg", (0, 243)), ("imagenet_07_609.jpg", (7, 609)), ("imagenet_15_99.JPG", (15, 99))],
)
def test_names_give_index_and_label(name, expected):
    assert imagenet_samples.parse_name(name) == expected


@pytest.mark.parametrize("name", ["imagenet_00.jpg", "imagenet_00_12a.jpg", "cifar10_00_3.png", "imagenet_01_1000.jpg"])
def test_other_names_are_refused(name):
    with pytest.raises(ValueError, match=name):
        imagenet_samples.parse_name(name)


def test_folder_listing_and_label_list(tmp_path):
    for name in ("imagenet_01_5.jpg", "imagenet_00_999.jpg", "mnist_00_7.png", "cifar100_00_49.png"):
        (tmp_path / name).write_bytes(b"")
    images = imagenet_samples.labelled_images(tmp_path)
    assert [(i.path.name, i.index, i.label) for i in images] == [
        ("imagenet_00_999.jpg", 0, 999),
        ("imagenet_01_5.jpg", 1, 5),
    ]
    listed = parse_label_list(imagenet_samples.write_label_list(images, tmp_path / "val_list.txt"))
    assert [(str(e.path), e.label) for e in listed] == [("imagenet_00_999.jpg", 999), ("imagenet_01_5.jpg", 5)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no imagenet_"):
        imagenet_samples.labelled_images(tmp_path / "empty")


def test_the_installed_wheel_ships_twenty_labelled_photos():
    try:
        folder = imagenet_samples.data_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    images = imagenet_samples.labelled_images()
    assert [i.index for i in images] == list(range(20))
    assert all(i.path.parent == folder and i.path.stat().st_size > 1000 for i in images)
    assert images[0].label == 243 and images[7].label == 609  # imagenet_00_243.jpg, imagenet_07_609.jpg
    assert "foolbox" not in sys.modules  # located, not imported (its __init__ pulls eagerpy, GitPython)


def test_mirror_images_keep_the_label_and_flip_the_pixels(tmp_path):
    import numpy as np
    from PIL import Image

    source = tmp_path / "src"
    source.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source / "imagenet_03_42.png")
    folder, label_list = imagenet_samples.with_mirrors(imagenet_samples.labelled_images(source), tmp_path / "out")
    entries = [(str(e.path), e.label) for e in parse_label_list(label_list)]
    assert entries == [("imagenet_03_42.png", 42), ("imagenet_03_42_mirror.png", 42)]
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "imagenet_03_42_mirror.png")), pixels[:, ::-1])


def test_ten_crop_views_keep_the_label_and_crop_the_pixels(tmp_path):
    """12 views per photo (whole, centre and four corners keeping 7/8 of each side, each mirrored), all with the
    photo's label; each view's pixels are numpy's slice (and flip) of the photo."""
    import numpy as np
    from PIL import Image

    source = tmp_path / "src"
    source.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source / "imagenet_05_7.png")
    folder, label_list = imagenet_samples.with_views(imagenet_samples.labelled_images(source), tmp_path / "out")
    entries = [(str(e.path), e.label) for e in parse_label_list(label_list)]
    assert len(entries) == 12 and {label for _, label in entries} == {7}
    h, w = 28, 42  # 7/8 of 32 and 48
    expected = {
        "full": pixels,
        "centre": pixels[2 : 2 + h, 3 : 3 + w],
        "top_left": pixels[:h, :w],
        "top_right": pixels[:h, -w:],
        "bottom_left": pixels[-h:, :w],
        "bottom_right": pixels[-h:, -w:],
    }
    for view, want in expected.items():
        np.testing.assert_array_equal(np.asarray(Image.open(folder / f"imagenet_05_7_{view}.png")), want)
        mirror = np.asarray(Image.open(folder / f"imagenet_05_7_{view}_mirror.png"))
        np.testing.assert_array_equal(mirror, want[:, ::-1])
