"""data/images.py: class folders of real image files drawn with Pillow, read back as arrays."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from common.errors import DataError
from data.images import CACHE_ENV, cache_dir, has_split_folders, parse_shape, read_image_folder


def glyph(path: Path, k: int, size: tuple[int, int] = (16, 12), mode: str = "L", fmt: str | None = None) -> Path:
    """A small picture: a bar whose position depends on k, on a black background."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new(mode, size)
    ImageDraw.Draw(im).rectangle([k % size[0], 0, k % size[0] + 1, size[1] - 1], fill="white" if mode != "L" else 255)
    im.save(path, format=fmt)
    return path


def tree(root: Path, classes: dict[str, int], size=(16, 12), suffix=".png") -> Path:
    for c, n in classes.items():
        for i in range(n):
            glyph(root / c / f"{i}{suffix}", i, size)
    return root


def test_classes_are_sorted_folder_names_and_labels_index_them(tmp_path):
    # Rule: one label per class folder, in sorted name order; images are (N, H, W) uint8.
    s = read_image_folder(tree(tmp_path / "d", {"zeta": 2, "alpha": 3}))
    assert s.classes == ["alpha", "zeta"] and s.labels.tolist() == [0, 0, 0, 1, 1]
    assert s.images.shape == (5, 12, 16) and s.images.dtype == np.uint8


def test_pixels_are_the_drawn_ones(tmp_path):
    # Rule: a PNG reads back exactly: the bar of image k sits at columns k and k+1.
    s = read_image_folder(tree(tmp_path / "d", {"a": 3}))
    assert s.images[2].tolist() == [[255 if c in (2, 3) else 0 for c in range(16)]] * 12


def test_colour_jpeg_bmp_and_gif_become_grey(tmp_path):
    # Rule: every supported format reads, colour is converted to one grey channel.
    root = tmp_path / "d"
    glyph(root / "a" / "x.jpg", 1, mode="RGB", fmt="JPEG")
    glyph(root / "a" / "y.bmp", 1, mode="RGB", fmt="BMP")
    glyph(root / "b" / "z.gif", 1, mode="L", fmt="GIF")
    s = read_image_folder(root)
    assert s.images.shape == (3, 12, 16) and s.images[:, 0, 1].min() > 200 and s.images[:, 0, 8].max() < 30


def test_image_shape_resizes_mixed_sizes(tmp_path):
    # Rule: with image_shape (H, W) every image is resized to it.
    root = tree(tmp_path / "d", {"a": 2}, size=(16, 12))
    glyph(root / "b" / "big.png", 0, size=(40, 30))
    assert read_image_folder(root, image_shape=(8, 10)).images.shape == (3, 8, 10)


def test_mixed_sizes_name_two_files_and_their_sizes(tmp_path):
    # Rule: without image_shape, two sizes are one error naming a file of each size.
    root = tree(tmp_path / "d", {"a": 1}, size=(16, 12))
    glyph(root / "b" / "big.png", 0, size=(40, 30))
    with pytest.raises(DataError) as e:
        read_image_folder(root)
    # PIL sizes are (width, height); the message speaks --image-shape's height x width
    assert str(e.value).startswith(f"{root / 'a' / '0.png'} is 12x16 but {root / 'b' / 'big.png'} is 30x40 (height x width)")


def test_empty_folder_is_one_error(tmp_path):
    # Rule: a folder without images names itself.
    (tmp_path / "d" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"d: no images"):
        read_image_folder(tmp_path / "d")


def test_file_that_is_not_an_image_is_named(tmp_path):
    # Rule: a corrupt .png and a stray .txt are each one error naming the file; hidden files are skipped.
    root = tree(tmp_path / "d", {"a": 2})
    (root / "a" / ".DS_Store").write_bytes(b"\0")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: not a readable image"):
        read_image_folder(root)
    (root / "a" / "broken.png").unlink()
    (root / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: not an image file"):
        read_image_folder(root)


def test_image_beside_the_class_folders_is_named(tmp_path):
    # Rule: an image directly under DIR is refused: its class would be unknown.
    root = tree(tmp_path / "d", {"a": 2})
    glyph(root / "loose.png", 0)
    with pytest.raises(DataError, match=r"loose\.png: images go in one folder per class"):
        read_image_folder(root)


def test_train_and_test_folders_are_detected(tmp_path):
    # Rule: DIR/train and DIR/test together mean the source brings its own test set.
    tree(tmp_path / "d" / "train", {"a": 1})
    assert not has_split_folders(tmp_path / "d")
    tree(tmp_path / "d" / "test", {"a": 1})
    assert has_split_folders(tmp_path / "d")


@pytest.mark.parametrize("text, shape", [("28x28", (28, 28)), ("16X8", (16, 8))])
def test_parse_shape(text, shape):
    # Rule: HxW, case-insensitive, gives (H, W).
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["28", "0x5", "ax3", "-1x4"])
def test_bad_shape_is_one_error(text):
    # Rule: anything but two positive integers is a DataError naming --image-shape and the value.
    with pytest.raises(DataError, match=rf"^--image-shape {text}: expected HxW"):
        parse_shape(text)


def repaint(path: Path, k: int) -> None:
    """New pixels in the same file, keeping its size and modification time (what the cache key sees)."""
    st = path.stat()
    glyph(path, k, fmt="BMP")  # uncompressed: the same size whatever the pixels
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_second_read_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = tree(tmp_path / "d", {"a": 3}, suffix=".bmp")
    first = read_image_folder(root)
    repaint(root / "a" / "0.bmp", 5)  # invisible to the key: only a cached read still returns the old pixels
    assert np.array_equal(read_image_folder(root).images, first.images)
    assert not np.array_equal(read_image_folder(root, cache=False).images, first.images)


def test_a_changed_file_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = tree(tmp_path / "d", {"a": 3})
    read_image_folder(root)
    glyph(root / "a" / "0.png", 5)
    os.utime(root / "a" / "0.png", ns=(1, 1))
    assert np.array_equal(read_image_folder(root).images, read_image_folder(root, cache=False).images)


def test_the_cache_is_one_file_per_folder_and_shape(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = tree(tmp_path / "d", {"a": 3})
    read_image_folder(root)
    (root / "a" / "9.png").write_bytes((root / "a" / "0.png").read_bytes())  # the folder changes: same cache file
    read_image_folder(root)
    read_image_folder(root, image_shape=(8, 8))
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_image_folder(tree(tmp_path / "d", {"a": 2}))
    assert cache_dir() is None and not (tmp_path / "xdg").exists()


def test_a_corrupt_cache_file_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = tree(tmp_path / "d", {"a": 3})
    first = read_image_folder(root)
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(b"not an npz")
    assert np.array_equal(read_image_folder(root).images, first.images)


def test_an_unwritable_cache_still_reads(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "file" / "cache"))
    assert read_image_folder(tree(tmp_path / "d", {"a": 2})).images.shape == (2, 12, 16)
    assert "could not cache" in caplog.text


def test_a_subfolder_is_skipped_but_a_folder_named_like_an_image_is_named(tmp_path):
    # Rule: class/<subfolder>/ is not part of the set (as before); class/x.png/ claims to be an image
    # and is not one, so it is named rather than silently left out.
    root = tree(tmp_path / "d", {"a": 2})
    glyph(root / "a" / "thumbs" / "t.png", 0)
    assert len(read_image_folder(root).images) == 2
    (root / "a" / "x.png").mkdir()
    with pytest.raises(DataError, match=rf"^{root / 'a' / 'x.png'}: a folder, not an image file$"):
        read_image_folder(root)


def test_a_cut_short_cache_file_is_a_warning_not_a_traceback(tmp_path, monkeypatch, caplog):
    # Rule: a cache file cut short (a full disk, a killed writer: zipfile.BadZipFile) is a WARNING naming
    # it, and the folder is decoded again. (Every kind of damage: tests/test_image_reader.py.)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = tree(tmp_path / "d", {"a": 3})
    first = read_image_folder(root)
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(cached.read_bytes()[:100])
    assert np.array_equal(read_image_folder(root).images, first.images)
    assert f"{cached}: unreadable image cache (BadZipFile" in caplog.text
