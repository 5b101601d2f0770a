"""Rules for the IDX reader: real MNIST loads exactly, every bad file is a one-line DataError (CSV: test_csv.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from common.errors import DataError
from data.idx import MNIST_FILES, find_idx, md5_of_idx, read_idx, write_idx

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    """The first 100 real test images and labels: small, but real data."""
    images = read_idx(RAW / "t10k-images-idx3-ubyte.gz")[:100]
    labels = read_idx(RAW / "t10k-labels-idx1-ubyte.gz")[:100]
    return images, labels


def raise_message(path: Path, **kwargs: object) -> str:
    """Read path, insist on a one-line DataError naming the file, and return its message."""
    with pytest.raises(DataError) as info:
        read_idx(path, **kwargs)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


# ---- IDX: the real packaged files ------------------------------------------------------------


# Rule: each packaged file loads as uint8 with MNIST's shape and passes its published MD5.
@pytest.mark.parametrize(
    "name, shape",
    [
        ("train-images-idx3-ubyte", (60000, 28, 28)),
        ("train-labels-idx1-ubyte", (60000,)),
        ("t10k-images-idx3-ubyte", (10000, 28, 28)),
        ("t10k-labels-idx1-ubyte", (10000,)),
    ],
)
def test_real_files_shape_dtype_and_md5(name: str, shape: tuple[int, ...]) -> None:
    array = read_idx(find_idx(RAW, name), expected_md5=MNIST_FILES[name])
    assert array.shape == shape
    assert array.dtype == np.uint8
    assert md5_of_idx(RAW / f"{name}.gz") == MNIST_FILES[name]


# Rule: label counts per digit equal the README's published facts.
@pytest.mark.parametrize(
    "name, counts",
    [("train-labels-idx1-ubyte.gz", TRAIN_COUNTS), ("t10k-labels-idx1-ubyte.gz", TEST_COUNTS)],
)
def test_real_label_counts(name: str, counts: list[int]) -> None:
    labels = read_idx(RAW / name)
    assert np.bincount(labels, minlength=10).tolist() == counts


# Rule: train pixels scaled to [0, 1] have the well-known mean 0.1307 and std 0.3081.
def test_real_train_pixel_mean_std() -> None:
    images = read_idx(RAW / "train-images-idx3-ubyte.gz")
    # A histogram of grey levels gives exact sums without a 376 MB float copy; chunks keep bincount's
    # int64 cast small (one bincount over all 47M pixels takes ~1 s).
    hist = sum(np.bincount(chunk.ravel(), minlength=256) for chunk in np.array_split(images, 60))
    hist = np.asarray(hist, dtype=np.float64)
    levels = np.arange(256) / 255.0
    mean = (hist * levels).sum() / hist.sum()
    std = np.sqrt((hist * levels**2).sum() / hist.sum() - mean**2)
    assert round(mean, 4) == 0.1307
    assert round(std, 4) == 0.3081


# ---- IDX: writing and finding ----------------------------------------------------------------


# Rule: a raw (uncompressed) IDX written by write_idx reads back identical, header as specified.
def test_raw_round_trip(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = small
    for name, array, magic in (("imgs-idx3-ubyte", images, 2051), ("lbls-idx1-ubyte", labels, 2049)):
        path = tmp_path / name
        write_idx(path, array)
        raw = path.read_bytes()
        assert int.from_bytes(raw[:4], "big") == magic
        assert len(raw) == 4 + 4 * array.ndim + array.size
        assert path.stat().st_mode & 0o777 == 0o644  # readable by other users, unlike a bare mkstemp
        back = read_idx(path)
        assert back.dtype == np.uint8 and np.array_equal(back, array)
    assert not list(tmp_path.glob(".*"))  # no temp files left by the atomic write


# Rule: gzip is detected by content, not suffix, and md5_of_idx sees the same bytes either way.
def test_gzip_detected_by_magic_bytes(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = small
    gz_no_suffix, raw = tmp_path / "images-idx3-ubyte", tmp_path / "plain-images"
    write_idx(gz_no_suffix, images, gzip_compress=True)
    write_idx(raw, images)
    assert gz_no_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert np.array_equal(read_idx(gz_no_suffix), images)
    assert md5_of_idx(gz_no_suffix) == md5_of_idx(raw)


# Rule: find_idx prefers name.gz, falls back to the raw name, else names folder and file.
def test_find_idx(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = small
    write_idx(tmp_path / "x-labels", labels)
    assert find_idx(tmp_path, "x-labels") == tmp_path / "x-labels"
    write_idx(tmp_path / "x-labels.gz", labels)
    assert find_idx(tmp_path, "x-labels") == tmp_path / "x-labels.gz"
    with pytest.raises(DataError, match=r"y-labels") as info:
        find_idx(tmp_path, "y-labels")
    assert str(tmp_path) in str(info.value)


# ---- IDX: every bad input is a DataError naming the file -------------------------------------


@pytest.fixture()
def good_images(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> bytes:
    """Raw IDX bytes of 100 real images, to corrupt in each test."""
    write_idx(tmp_path / "src", small[0])
    return (tmp_path / "src").read_bytes()


# Rule: a missing file is reported as not found.
def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in raise_message(tmp_path / "nope-images-idx3-ubyte.gz")


# Rule: an empty file is reported as empty.
def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty-images-idx3-ubyte"
    path.write_bytes(b"")
    assert "empty" in raise_message(path)


# Rule: a labels file under an images name is a wrong magic number, with both numbers shown.
def test_wrong_magic(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, small[1])
    message = raise_message(path)
    assert "wrong magic number 2049" in message and "2051" in message


# Rule: fewer data bytes than the header's dimensions promise is truncated data.
def test_truncated_data(tmp_path: Path, good_images: bytes) -> None:
    path = tmp_path / "cut-images"
    path.write_bytes(good_images[:-10])
    assert "truncated data" in raise_message(path)


# Rule: a file that ends inside the header is a truncated header.
def test_truncated_header(tmp_path: Path, good_images: bytes) -> None:
    path = tmp_path / "short-images"
    path.write_bytes(good_images[:9])
    assert "truncated header" in raise_message(path)


# Rule: bytes after the data are rejected, with their count.
def test_trailing_bytes(tmp_path: Path, good_images: bytes) -> None:
    path = tmp_path / "long-images.gz"
    path.write_bytes(gzip.compress(good_images + b"\0" * 7))
    assert "7 trailing bytes" in raise_message(path)


# Rule: a decompressed MD5 other than the expected one is a checksum mismatch showing both.
def test_checksum_mismatch(tmp_path: Path, good_images: bytes) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(good_images)
    message = raise_message(path, expected_md5="0" * 32)
    assert "checksum mismatch" in message and "0" * 32 in message


# Rule: a gzip with damaged deflate data, or cut short, is corrupt gzip, not a library error.
@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_gzip(tmp_path: Path, good_images: bytes, damage: str) -> None:
    packed = bytearray(gzip.compress(good_images))
    if damage == "flip":
        for k in range(20, 40):
            packed[k] ^= 0xFF
    else:
        del packed[len(packed) // 2 :]
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(bytes(packed))
    assert "corrupt gzip" in raise_message(path)
