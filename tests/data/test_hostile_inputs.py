"""preprocess and the data readers against hostile inputs (issue 9): each gives the right pixels or one clear
error naming the file and line, and never leaves a `.part` file or orphaned worker processes behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from int8kit.cli import main
from int8kit.data import CompactReader, ImageSpec, open_dataset, write_compact
from int8kit.data.images import load_uint8
from int8kit.data.label_list import parse_label_list
from int8kit.data.preprocess import PreprocessConfig, preprocess
from int8kit.errors import DataError

SPEC = ImageSpec(data_dim=8, resize_size=10, grayscale=True, mean=(0.0,), std=(1.0,))


def cli_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def no_part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.part")]


# -- labels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("label", ["99999999999999999999999", str(2**63)])
def test_label_beyond_int64_is_a_line_error(tmp_path, label):
    (tmp_path / "list.txt").write_text(f"a.png 1\nb.png {label}\n")
    with pytest.raises(DataError) as info:
        parse_label_list(tmp_path / "list.txt")
    assert f"list.txt:2: label {label}" in str(info.value) and "int64" in str(info.value)


def test_largest_int64_label_is_kept(tmp_path):
    (tmp_path / "list.txt").write_text(f"a.png {2**63 - 1}\n")
    assert parse_label_list(tmp_path / "list.txt")[0].label == 2**63 - 1


def test_cli_label_overflow_is_one_line_and_leaves_no_part_file(tmp_path, capsys):
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "val_list.txt").write_text("a.png 99999999999999999999999\n")
    out = tmp_path / "out" / "val.bin"
    line = cli_error(capsys, ["preprocess", "--data-dir", str(tmp_path), "--output-file", str(out), "--workers", "1"])
    assert "val_list.txt:1" in line and "99999999999999999999999" in line
    assert not out.exists() and not no_part_files(tmp_path)


def test_writer_error_at_close_leaves_no_part_file(tmp_path):
    """A failure while the writer finishes the file (here: a label numpy cannot store) aborts the file too."""
    from int8kit.data.seed_format import SeedWriter

    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text("a.png 3\n")
    out = tmp_path / "out" / "val.bin"
    config = PreprocessConfig(tmp_path, tmp_path / "list.txt", out, spec=SPEC, workers=1)
    original = SeedWriter.close

    def failing_close(self):
        self._labels.append(2**70)
        return original(self)

    SeedWriter.close = failing_close
    try:
        with pytest.raises(OverflowError):
            preprocess(config)
    finally:
        SeedWriter.close = original
    assert not out.exists() and not no_part_files(tmp_path)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_label_list_is_utf8_with_or_without_bom(tmp_path, bom):
    Image.fromarray(np.full((12, 12), 200, np.uint8)).save(tmp_path / "été.png")
    (tmp_path / "list.txt").write_bytes(bom + "été.png 4\n".encode())
    (entry,) = parse_label_list(tmp_path / "list.txt")
    assert (entry.path, entry.label) == ("été.png", 4)
    out = tmp_path / "val.bin"
    preprocess(PreprocessConfig(tmp_path, tmp_path / "list.txt", out, spec=SPEC, workers=1))
    reader = open_dataset(out)
    np.testing.assert_array_equal(reader.labels, [4])
    np.testing.assert_allclose(reader.batch(0, 1), 200 / 255, rtol=1e-6)


def test_label_list_in_another_encoding_names_the_file(tmp_path):
    (tmp_path / "list.txt").write_bytes("été.png 4\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"list\.txt.*UTF-8"):
        parse_label_list(tmp_path / "list.txt")


# -- pixels ---------------------------------------------------------------------------------------
def test_16_bit_grayscale_png_is_scaled_not_saturated(tmp_path):
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (8, 8), dtype=np.uint16)
    deep[0, :4] = [0, 128, 65407, 65535]
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    spec = ImageSpec(data_dim=8, resize_size=8, grayscale=True, mean=(0.0,), std=(1.0,))
    got = load_uint8(tmp_path / "deep.png", spec)[0]
    want = np.rint(deep / 257.0).astype(np.uint8)  # 65535 -> 255, the PNG spec's sample scaling
    np.testing.assert_array_equal(got, want)
    rgb = load_uint8(tmp_path / "deep.png", ImageSpec(data_dim=8, resize_size=8))
    for channel in rgb:
        np.testing.assert_array_equal(channel, want)


def seed_resize_crop(img: Image.Image, resize: int, dim: int) -> np.ndarray:
    """The seed's steps on the whole image (what the bounded path must reproduce)."""
    w, h = img.size
    s = min(w, h)
    img = img.resize((round(w * resize / s), round(h * resize / s)), Image.LANCZOS)
    w, h = img.size
    left, top = (w - dim) // 2, (h - dim) // 2
    return np.asarray(img.crop((left, top, left + dim, top + dim)).convert("L"))


@pytest.mark.parametrize("size", [(12, 400), (400, 12), (3, 97)])
def test_extreme_aspect_ratio_matches_the_seed_resize_then_crop(tmp_path, size):
    rng = np.random.default_rng(1)
    # smooth content (a photo, not noise), where Lanczos does not ring into the clip
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = (127 + 100 * np.sin(xx / 3.0 + yy / 7.0) + rng.normal(0, 5, (h, w))).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "long.png")
    spec = ImageSpec(data_dim=24, resize_size=32, grayscale=True, mean=(0.0,), std=(1.0,))
    got = load_uint8(tmp_path / "long.png", spec)[0].astype(int)
    want = seed_resize_crop(Image.open(tmp_path / "long.png"), 32, 24).astype(int)
    assert np.abs(got - want).max() <= 1  # the same filter taps; only the box coordinates' rounding differs


def test_extreme_aspect_ratio_memory_is_bounded_by_the_output(tmp_path):
    """A 1x4000 PNG resized whole to a short side of 256 is a 256x1,024,000 image (1 GB); cropped first, a few MB."""
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (4000, 1), dtype=np.uint8)).save(tmp_path / "t.png")
    code = textwrap.dedent(
        f"""
        import resource
        from int8kit.data.images import ImageSpec, load_uint8
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = load_uint8({str(tmp_path / "t.png")!r}, ImageSpec())
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert out.shape == (3, 224, 224), out.shape
        print((after - before) // 1024)
        """
    )
    grew_mb = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert grew_mb < 50, f"peak memory grew {grew_mb} MB for one 1x4000 image"


# -- compact header -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -0.0, float("nan"), float("inf")])
def test_compact_header_with_unusable_std_is_refused(tmp_path, bad):
    pixels = np.random.default_rng(3).integers(0, 255, (2, 2, 4, 4), dtype=np.uint8)
    path = write_compact(tmp_path / "c.bin", pixels, [0, 1], (0.5, 0.5), (0.25, bad))
    with pytest.raises(DataError) as info:
        CompactReader(path)
    assert "c.bin" in str(info.value) and "std" in str(info.value) and "channel 1" in str(info.value)


def test_compact_header_with_nan_mean_is_refused(tmp_path):
    pixels = np.zeros((1, 1, 2, 2), np.uint8)
    path = write_compact(tmp_path / "c.bin", pixels, [0], (float("nan"),), (1.0,))
    with pytest.raises(DataError, match=r"c\.bin.*mean"):
        open_dataset(path)


def test_cli_test_refuses_std_zero_in_one_line(tmp_path, capsys):
    from onnx import TensorProto, helper, save

    pixels = np.random.default_rng(3).integers(0, 255, (2, 1, 4, 4), dtype=np.uint8)
    data = write_compact(tmp_path / "c.bin", pixels, [0, 1], (0.5,), (0.0,))
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    line = cli_error(capsys, ["test", "--infer-model", str(tmp_path / "m.onnx"), "--infer-data", str(data)])
    assert "c.bin" in line and "std" in line


# -- interruption ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """600 uncompressed 300x300 PNGs: several seconds of decoding for 2 workers, time to interrupt."""
    n = 600
    rng = np.random.default_rng(4)
    folder = tmp_path_factory.mktemp("images")
    img = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(img, i, axis=1)).save(folder / f"{i}.png", compress_level=0)
    (folder / "val_list.txt").write_text("".join(f"{i}.png {i % 10}\n" for i in range(n)))
    return folder


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_preprocess(folder: Path, out: Path) -> subprocess.Popen:
    """Run preprocess (2 workers) in a child; return once its workers run and its .part file exists.

    Its output goes to files, not pipes: orphaned workers would hold a pipe open after the parent ended.
    """
    argv = [sys.executable, "-m", "int8kit", "preprocess", "--data-dir", str(folder), "--output-file", str(out)]
    with open(out.parent.parent / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([*argv, "--workers", "2"], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (no_part_files(out.parent) and len(_descendants(proc.pid)) >= 3):
        assert proc.poll() is None, (out.parent.parent / "stderr.txt").read_text()
        time.sleep(0.05)
    time.sleep(0.3)  # let the workers get going and the .part file grow
    return proc


def _wait_gone(pids: set[int], seconds: float = 15) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_sigterm_during_preprocess_leaves_no_part_file_and_no_workers(tmp_path, big_folder):
    folder = big_folder
    out = tmp_path / "out" / "val.bin"
    out.parent.mkdir()
    proc = _start_preprocess(folder, out)
    workers = _descendants(proc.pid)
    assert no_part_files(out.parent), "preprocess finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    err = (tmp_path / "stderr.txt").read_bytes()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not out.exists() and not no_part_files(out.parent)
    assert not _wait_gone(workers), "worker processes outlived preprocess"
    assert b"Traceback" not in err, err.decode()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_workers_end_when_preprocess_is_killed(tmp_path, big_folder):
    folder = big_folder
    out = tmp_path / "out" / "val.bin"
    out.parent.mkdir()
    proc = _start_preprocess(folder, out)
    workers = _descendants(proc.pid)
    proc.kill()  # SIGKILL: no handler runs in the parent, so the workers must notice by themselves
    proc.wait(timeout=10)
    assert not _wait_gone(workers), "worker processes outlived a killed preprocess"


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_integer_npy_images_are_refused_not_cast(tmp_path, dtype):
    np.save(tmp_path / "raw.npy", np.zeros((2, 3, 4, 4), dtype))
    with pytest.raises(DataError) as info:
        open_dataset(tmp_path / "raw.npy")
    assert "raw.npy" in str(info.value) and np.dtype(dtype).name in str(info.value) and "float32" in str(info.value)
