"""data/photo.py: photos and scans prepared the way MNIST's digits were made."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.photos import render
from data import photo
from data.photo import prepare, read_photos


def bbox(x: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(x > 0)
    return int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    total = x.sum()
    return float((x.sum(1) * np.arange(x.shape[0])).sum() / total), float((x.sum(0) * np.arange(x.shape[1])).sum() / total)


@pytest.fixture(scope="module")
def digits(mnist_arrays) -> np.ndarray:
    return mnist_arrays[2][:50]


def test_an_mnist_digit_keeps_its_box_and_centre(digits):
    # Rule: the longer side of the ink fills MNIST's 20-pixel box, the centre of mass sits at (14, 14).
    for d in digits:
        out = prepare(d, (28, 28))
        assert max(bbox(out)) == 20
        cy, cx = centre_of_mass(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_dark_ink_on_a_light_page_is_inverted(digits):
    # Rule: polarity is judged per image; black-on-white gives what white-on-black gives.
    for d in digits[:10]:
        np.testing.assert_allclose(prepare(255 - d, (28, 28)), prepare(d, (28, 28)), atol=1e-3)


def test_a_blank_uneven_noisy_page_has_no_ink():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:120, :160]
    page = 200 + 30 * yy / 120 - 20 * xx / 160 + rng.normal(0, 6, (120, 160))
    assert not prepare(np.clip(page, 0, 255).astype(np.uint8), (28, 28)).any()


def test_specks_far_from_the_digit_are_ignored(digits):
    page = np.zeros((100, 100), np.uint8)
    page[30:58, 30:58] = digits[0]
    specked = page.copy()
    specked[3, 3] = specked[95, 90] = specked[5, 92] = 255
    np.testing.assert_array_equal(prepare(specked, (28, 28)), prepare(page, (28, 28)))


def test_the_output_takes_the_training_range(digits):
    out = prepare(digits[0], (28, 28), pixel_range=(0.0, 16.0))
    assert out.min() == 0.0 and out.max() == 16.0


def test_another_image_shape_gets_its_own_box(digits):
    # Rule: for H x W the box is round(H * 20/28) x round(W * 20/28): 9 x 7 inside 12 x 10.
    out = prepare(digits[0], (12, 10))
    assert out.shape == (12, 10)
    h, w = bbox(out)
    assert h <= 9 and w <= 7 and (h == 9 or w == 7)


def test_a_photo_comes_out_like_the_digit_it_shows(digits):
    # Rule: dark ink on a light, uneven, noisy page, larger and anywhere, comes back close to the original.
    rng = np.random.default_rng(1)
    scores = [np.corrcoef(prepare(render(d, rng), (28, 28)).ravel(), prepare(d, (28, 28)).ravel())[0, 1]
              for d in digits]
    assert np.median(scores) > 0.85


def test_a_process_pool_reads_what_one_process_reads(digits, tmp_path, monkeypatch):
    paths = []
    for i, d in enumerate(digits[:12]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(255 - d).save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    paths.insert(5, str(tmp_path / "bad.png"))
    serial = read_photos(paths, (28, 28), (0.0, 255.0), workers=1)
    monkeypatch.setattr(photo, "PARALLEL_FROM", 1)
    monkeypatch.setattr(photo, "CHUNK", 5)
    pooled = read_photos(paths, (28, 28), (0.0, 255.0), workers=2)
    assert isinstance(serial[5], str) and serial[5] == pooled[5] and serial[5].startswith(f"{tmp_path / 'bad.png'}: ")
    for a, b in zip(serial[:5] + serial[6:], pooled[:5] + pooled[6:]):
        np.testing.assert_array_equal(a, b)


def test_unusable_files_are_errors_of_their_own_in_one_process_and_a_pool(digits, tmp_path, monkeypatch):
    # Rule: a huge image, a broken link, a folder or a pipe named like an image is that file's one-line
    # error (never an exception that stops the others, never a read that blocks); good files still read.
    import os

    from tests.test_image_reader import huge_png

    good = tmp_path / "good.png"
    Image.fromarray(255 - digits[0]).save(good)
    huge_png(tmp_path / "huge.png", 100_000, 100_000)
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "folder.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    bad = {"huge.png": "too large to decode safely", "link.png": "a broken link", "folder.png": "a folder",
           "pipe.png": "not a regular file"}
    paths = [str(good)] + [str(tmp_path / n) for n in bad]
    serial = read_photos(paths, (28, 28), (0.0, 255.0), workers=1)
    monkeypatch.setattr(photo, "PARALLEL_FROM", 1)
    pooled = read_photos(paths, (28, 28), (0.0, 255.0), workers=2)
    for got in (serial, pooled):
        np.testing.assert_array_equal(got[0], prepare(255 - digits[0], (28, 28)))
        assert [g[: len(f"{tmp_path / n}: {why}")] for n, why, g in zip(bad, bad.values(), got[1:])] == [
            f"{tmp_path / n}: {why}" for n, why in bad.items()]
