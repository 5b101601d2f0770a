"""data.image_file.decode, the one reader of image files (training data, searches and model.predict):
every Pillow mode mapped to greyscale on purpose, oversized and unreadable files named in one line,
and an image cache that can never break a run. Real files made with Pillow, no mocks."""
from __future__ import annotations

import json
import logging
import os
import re
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.errors import DataError
from data.image_file import decode, greyscale
from data.images import CACHE_ENV, read_image_folder
from data.photo import read_photos
from tests.conftest import call_cli, one_error

RAMP = np.arange(256, dtype=np.uint8).reshape(16, 16)  # every 8-bit grey once


def save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def stroke_alpha() -> np.ndarray:
    """4x6 alpha: an opaque column 1, a half-covered (anti-aliased) column 2, the rest transparent."""
    a = np.zeros((4, 6), np.uint8)
    a[:, 1], a[:, 2] = 255, 128
    return a


def rows(*values: int) -> list[list[int]]:
    return [list(values)] * 4


# On a white page: opaque black 0, half-covered black (255 * 127 + 127) // 255 = 127, the page 255.
DARK_ON_WHITE = rows(255, 0, 127, 255, 255, 255)
# On a black page: opaque white 255, half-covered white (255 * 128 + 127) // 255 = 128, the page 0.
LIGHT_ON_BLACK = rows(0, 255, 128, 0, 0, 0)


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid 8x8 PNG whose IHDR (and its CRC) claims width x height: a decompression bomb's header."""
    save(Image.new("L", (8, 8), 255), path)
    b = bytearray(path.read_bytes())
    assert b[12:16] == b"IHDR"
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    path.write_bytes(bytes(b))
    return path


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root without following links: a file's bytes, a link's target, a folder, other."""
    out: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            st = os.lstat(p)
            key = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[key] = p.read_bytes()
            else:
                out[key] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", st.st_mtime_ns)
    return out


# ---- one mapping per Pillow mode -------------------------------------------------------------------


@pytest.mark.parametrize("sixteen", [
    lambda a: Image.fromarray(a.astype(np.uint16) * 257),  # the standard 8 -> 16-bit scaling (libpng, GIMP)
    lambda a: Image.fromarray(a.astype(np.uint16) << 8),  # a plain shift
    lambda a: Image.fromarray((a.astype(np.uint16) * 257).astype(">u2")),  # a big-endian array ("I;16B")
], ids=["times-257", "shifted", "big-endian"])
def test_a_16_bit_png_reads_as_its_8_bit_twin(tmp_path, sixteen):
    # Rule: 16-bit grey keeps its high byte: the same picture saved in 16 and in 8 bits is one array
    # (convert("L") clipped every 16-bit value above 255 to white).
    eight = save(Image.fromarray(RAMP), tmp_path / "eight.png")
    wide = save(sixteen(RAMP), tmp_path / "sixteen.png")
    assert Image.open(wide).mode == "I;16"
    np.testing.assert_array_equal(decode(wide), RAMP)
    np.testing.assert_array_equal(decode(wide), decode(eight))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_grey_modes_read_on_the_16_bit_scale(mode):
    # Rule: "I" and "F" hold what other Pillow versions and plugins decode 16-bit files to: the same scale.
    im = Image.fromarray((RAMP.astype(np.int64) * 257).astype(np.int32 if mode == "I" else np.float32))
    assert im.mode == mode
    np.testing.assert_array_equal(greyscale(im), RAMP)


def test_a_16_bit_transparent_key_is_the_page(tmp_path):
    # Rule: a 16-bit PNG's tRNS grey value is transparent: composited onto the page like an alpha band.
    samples = np.full((4, 6), 1000, np.uint16)  # 1000 >> 8 = 3: nearly black, but transparent
    samples[:, 1] = 0
    path = save(Image.fromarray(samples), tmp_path / "key.png", transparency=1000)
    assert decode(path).tolist() == rows(255, 0, 255, 255, 255, 255)


def black_stroke(mode: str, hidden: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """A black stroke on transparency; `hidden` is the colour stored under alpha 0."""
    a = stroke_alpha()
    rgb = np.where(a[..., None] > 0, 0, np.array(hidden, np.uint8)).astype(np.uint8)
    if mode == "LA":
        return Image.fromarray(np.dstack([rgb[..., 0], a]), "LA")
    return Image.fromarray(np.dstack([rgb, a]), "RGBA")


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_a_black_stroke_on_transparency_is_black_on_a_white_page(tmp_path, mode):
    # Rule: dark ink on a transparent background is dark ink on a white page; partial alpha blends
    # (before, the black hidden under alpha 0 made the page black: a blank image).
    assert decode(save(black_stroke(mode), tmp_path / f"{mode}.png")).tolist() == DARK_ON_WHITE


def test_the_colour_hidden_under_transparency_never_matters(tmp_path):
    # Rule: what a tool stores under alpha 0 (black, white, anything) does not change the picture.
    got = [decode(save(black_stroke("RGBA", hidden), tmp_path / f"{i}.png")).tolist()
           for i, hidden in enumerate([(0, 0, 0), (255, 255, 255), (12, 200, 7)])]
    assert got == [DARK_ON_WHITE] * 3


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_a_white_stroke_on_transparency_stays_white_on_black(tmp_path, mode):
    # Rule: light ink gets a black page (the colour opposite to the ink), so an MNIST-like white
    # drawing on transparency stays white on black rather than vanishing into a white page.
    a = stroke_alpha()
    im = (Image.fromarray(np.dstack([np.full_like(a, 255), a]), "LA") if mode == "LA"
          else Image.fromarray(np.dstack([np.full((4, 6, 3), 255, np.uint8), a]), "RGBA"))
    assert decode(save(im, tmp_path / f"{mode}.png")).tolist() == LIGHT_ON_BLACK


def test_a_fully_transparent_image_is_a_blank_white_page(tmp_path):
    path = save(Image.new("RGBA", (6, 4), (0, 0, 0, 0)), tmp_path / "blank.png")
    assert decode(path).tolist() == rows(255, 255, 255, 255, 255, 255)


def test_an_mnist_digit_drawn_on_transparency_reads_as_on_paper(tmp_path, mnist_arrays):
    # Rule: a digit whose coverage is its alpha (black ink) is exactly the same digit on white paper.
    d = mnist_arrays[2][0]
    la = save(Image.fromarray(np.dstack([np.zeros_like(d), d]), "LA"), tmp_path / "la.png")
    np.testing.assert_array_equal(decode(la), 255 - d)


def test_a_palette_image_reads_its_colours_luminance(tmp_path):
    # Rule: palette colours go through RGB to ITU-R 601 luminance: red 76, green 150, blue 29.
    p = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    assert decode(save(p, tmp_path / "p.png")).tolist() == [[76, 150, 29]]
    assert decode(save(p, tmp_path / "p.bmp")).tolist() == [[76, 150, 29]]


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_a_palette_with_a_transparent_index_is_the_page(tmp_path, suffix):
    # Rule: a palette's transparent entry (PNG tRNS, GIF transparency) is the page, whatever its colour:
    # here black, as the blue ink stroke (luminance 29) is, would otherwise have been blank black.
    idx = np.zeros((4, 6), np.uint8)
    idx[:, 1] = 1
    p = Image.fromarray(idx, "P")
    p.putpalette([0, 0, 0, 0, 0, 255])
    path = save(p, tmp_path / f"p{suffix}", transparency=0)
    assert decode(path).tolist() == rows(255, 29, 255, 255, 255, 255)


def test_a_palette_with_alpha_composites_each_entry():
    # Rule: "PA" and an RGBA palette blend each pixel by its alpha, like RGBA.
    a = stroke_alpha()
    pa = Image.fromarray(np.dstack([np.zeros_like(a), a]), "PA")
    pa.putpalette([0, 0, 0])
    assert greyscale(pa).tolist() == DARK_ON_WHITE
    p = Image.fromarray(np.where(a == 255, 1, np.where(a == 128, 2, 0)).astype(np.uint8), "P")
    p.putpalette([0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 128], "RGBA")
    assert greyscale(p).tolist() == DARK_ON_WHITE


def test_cmyk_and_ycbcr_read_as_their_rgb_twins(tmp_path):
    # Rule: every colour model goes through RGB: CMYK black 0, paper 255, cyan 179; YCbCr grey keeps its Y.
    cmyk = Image.new("CMYK", (3, 1))
    for x, v in enumerate([(0, 0, 0, 255), (0, 0, 0, 0), (255, 0, 0, 0)]):
        cmyk.putpixel((x, 0), v)
    assert greyscale(cmyk).tolist() == [[0, 255, 179]] == greyscale(cmyk.convert("RGB")).tolist()
    assert greyscale(Image.new("YCbCr", (2, 1), (100, 128, 128))).tolist() == [[100, 100]]
    # a CMYK JPEG file (flat 8x8 blocks survive JPEG within a level or two)
    blocks = Image.new("CMYK", (16, 8), (0, 0, 0, 255))
    blocks.paste((0, 0, 0, 0), (8, 0, 16, 8))
    got = decode(save(blocks, tmp_path / "cmyk.jpg", quality=100)).astype(int)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert np.abs(got[:, :8]).max() <= 2 and np.abs(got[:, 8:] - 255).max() <= 2


def test_a_bilevel_image_is_0_or_255(tmp_path):
    bits = Image.new("1", (6, 4))
    for y in range(4):
        bits.putpixel((1, y), 1)
    path = save(bits, tmp_path / "bits.png")
    assert Image.open(path).mode == "1"
    assert decode(path).tolist() == rows(0, 255, 0, 0, 0, 0)


@pytest.mark.parametrize("orientation, turn", [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)),
                                               (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))])
def test_a_photo_is_read_upright_as_its_exif_orientation_says(tmp_path, monkeypatch, caplog, orientation, turn):
    # Rule: a phone's portrait photo, stored sideways with orientation 6 (turn 90 degrees clockwise to
    # view), reads as it was seen; the folder cache agrees with the upright shape (no warning, no decode).
    from data.image_file import header_shape

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    pixels = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4) * 10
    exif = Image.Exif()
    exif[0x0112] = orientation
    (tmp_path / "d" / "a").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(pixels).save(tmp_path / "d" / "a" / f"{i}.png", exif=exif)
    assert np.array_equal(decode(tmp_path / "d" / "a" / "0.png"), turn(pixels))
    assert header_shape(tmp_path / "d" / "a" / "0.png") == turn(pixels).shape
    assert np.array_equal(read_image_folder(tmp_path / "d").images[0], turn(pixels))
    with caplog.at_level(logging.INFO, logger="data.images"):
        assert np.array_equal(read_image_folder(tmp_path / "d").images[1], turn(pixels))
    assert "from the cache" in caplog.text and "WARNING" not in caplog.text


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_an_animation_gives_its_first_frame(tmp_path, suffix):
    frames = [Image.new("L", (6, 4), v) for v in (10, 200, 90)]
    path = save(frames[0], tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 3
    assert decode(path).tolist() == rows(*[10] * 6)


def test_a_data_set_and_model_predict_read_a_file_alike(tmp_path):
    # Rule: one reader: --image-dir (read_image_folder, cached or not) and model.predict --as-is
    # (read_photos) get the same pixels from every kind of file.
    root = tmp_path / "d"
    a = stroke_alpha()
    files = [save(Image.fromarray(RAMP[:4, :6].astype(np.uint16) * 257), root / "a" / "sixteen.png"),
             save(black_stroke("LA"), root / "a" / "la.png"),
             save(black_stroke("RGBA", (255, 255, 255)), root / "a" / "rgba.png"),
             save(Image.fromarray(np.dstack([np.full_like(a, 255), a]), "LA"), root / "b" / "white.png"),
             save(Image.new("1", (6, 4), 1), root / "b" / "bits.png"),
             save(Image.new("RGB", (6, 4), (255, 0, 0)), root / "b" / "red.bmp")]
    expected = {str(f): decode(f) for f in files}
    for cache in (False, True, True):  # decoded, written to the cache, read from it
        s = read_image_folder(root, cache=cache)
        np.testing.assert_array_equal(s.images, np.stack([expected[f] for f in s.files]))
    as_is = read_photos(list(expected), (4, 6), (0.0, 255.0), as_is=True)
    np.testing.assert_array_equal(np.stack(as_is), np.stack(list(expected.values())).astype(np.float32))


# ---- files that cannot be used ------------------------------------------------------------------


@pytest.mark.parametrize("side", [100_000, 10_000], ids=["over-the-error-limit", "over-the-warning-limit"])
def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path, side):
    # Rule: Pillow's decompression-bomb error, and its warning (89-179 million pixels), are one
    # DataError naming the file; nothing is decoded.
    path = huge_png(tmp_path / "huge.png", side, side)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: too large to decode safely \(Image size "
                                        rf"\({side * side} pixels\) exceeds limit"):
        decode(path)


def test_gone_broken_links_folders_and_pipes_are_named(tmp_path):
    # Rule: a file the system will not hand over is one line saying why, never a traceback or a hang.
    target = save(Image.new("L", (4, 4)), tmp_path / "target.png")
    os.symlink(target, tmp_path / "link.png")
    target.unlink()  # the file vanished: its link now dangles
    (tmp_path / "folder.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    cases = {"gone.png": "cannot be read (No such file or directory)",
             "link.png": f"a broken link (to {target}, which does not exist)",
             "folder.png": "a folder, not an image file",
             "pipe.png": "not a regular file"}
    for name, why in cases.items():
        with pytest.raises(DataError) as e:
            decode(tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name}: {why}")


def read_error_cases() -> dict:
    """name -> (make the bad entry under root/b, the start of the one line that names it)."""
    def huge(root: Path, side: int) -> tuple[Path, str]:
        return huge_png(root / "b" / "huge.png", side, side), "too large to decode safely"

    def deleted_target(root: Path) -> tuple[Path, str]:
        target = save(Image.new("L", (8, 8)), root.parent / "elsewhere.png")
        os.symlink(target, root / "b" / "x.png")
        target.unlink()
        return root / "b" / "x.png", f"a broken link (to {target}, which does not exist)"

    def class_link(root: Path) -> tuple[Path, str]:
        os.symlink(root.parent / "no-such-folder", root / "c")
        return root / "c", f"a broken link (to {root.parent / 'no-such-folder'}, which does not exist)"

    def folder(root: Path) -> tuple[Path, str]:
        (root / "b" / "x.png").mkdir()
        return root / "b" / "x.png", "a folder, not an image file"

    def pipe(root: Path) -> tuple[Path, str]:
        os.mkfifo(root / "b" / "x.png")
        return root / "b" / "x.png", "not a regular file"

    return {"huge-header": lambda r: huge(r, 100_000), "huge-warning": lambda r: huge(r, 10_000),
            "link-to-a-deleted-file": deleted_target, "class-folder-link": class_link,
            "folder-named-x.png": folder, "pipe-named-x.png": pipe}


READ_ERRORS = read_error_cases()


def good_set(root: Path) -> Path:
    for c in "ab":
        for k in range(3):
            save(Image.fromarray(np.roll(RAMP[:8, :8], k)), root / c / f"{k}.png")
    return root


@pytest.mark.parametrize("case", READ_ERRORS, ids=list(READ_ERRORS))
def test_an_unusable_entry_in_an_image_dir_is_one_line(tmp_path, case):
    # Rule: `python -m data --image-dir` with one unusable entry exits 2 with one line naming it,
    # and leaves every input as it was.
    root = good_set(tmp_path / "in")
    bad, why = READ_ERRORS[case](root)
    before = snapshot(tmp_path)
    r = call_cli("data", "--image-dir", str(root), "--results-dir", str(tmp_path / "out"))
    assert one_error(r).startswith(f"{bad}: {why}")
    assert snapshot(tmp_path) == before


def test_model_train_refuses_a_huge_image_before_anything(tmp_path):
    root = good_set(tmp_path / "in")
    bad = huge_png(root / "a" / "huge.png", 100_000, 100_000)
    before = snapshot(tmp_path)
    r = call_cli("model.train", "--image-dir", str(root), "--results-dir", str(tmp_path / "out"), "--name", "r")
    assert one_error(r).startswith(f"{bad}: too large to decode safely")
    assert snapshot(tmp_path) == before


def test_predict_names_a_huge_file_and_predicts_the_rest(trained_model, mnist_arrays, tmp_path):
    # Rule: model.predict names the oversized file on stderr, still predicts the other input, exits 1;
    # a 16-bit PNG and a black-on-transparent drawing are predicted exactly as their 8-bit paper twins.
    d = mnist_arrays[2][0]
    paper = save(Image.fromarray(255 - d), tmp_path / "paper.png")
    wide = save(Image.fromarray((255 - d).astype(np.uint16) * 257), tmp_path / "sixteen.png")
    drawn = save(Image.fromarray(np.dstack([np.zeros_like(d), d]), "LA"), tmp_path / "drawn.png")
    huge = huge_png(tmp_path / "huge.png", 100_000, 100_000)
    files = [paper, huge, wide, drawn]
    before = snapshot(tmp_path)
    r = call_cli("model.predict", str(trained_model), *map(str, files), "--json")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {huge}: too large to decode safely"), r.stderr
    got = {x["file"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert list(got) == [str(paper), str(wide), str(drawn)]
    assert [x["prediction"] for x in got.values()] == ["7"] * 3
    assert got[str(wide)]["probability"] == pytest.approx(got[str(paper)]["probability"], abs=1e-6)
    assert got[str(drawn)]["probability"] == pytest.approx(got[str(paper)]["probability"], abs=1e-6)
    assert snapshot(tmp_path) == before


def test_predict_names_broken_links_and_pipes_inside_a_folder(trained_model, mnist_arrays, tmp_path):
    # Rule: an entry of a FILES folder that is not a readable file (a dangling link, a pipe, whose
    # read would block forever) is named on stderr; the rest is predicted; exit 1.
    folder = tmp_path / "scans"
    save(Image.fromarray(mnist_arrays[2][0]), folder / "good.png")
    os.symlink(tmp_path / "gone.png", folder / "link.png")
    os.mkfifo(folder / "pipe.png")
    r = call_cli("model.predict", str(trained_model), str(folder))
    assert r.returncode == 1 and str(folder / "good.png") in r.stdout
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {folder / 'link.png'}: a broken link (to {tmp_path / 'gone.png'}, which does not exist)",
                      f"error: {folder / 'pipe.png'}: not a regular file (a device, socket or pipe), so not an image file"]


# ---- the decoded-image cache --------------------------------------------------------------------


def write_npz(path: Path, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


DAMAGE = {
    "cut-short": lambda p, key, im: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "garbage": lambda p, key, im: p.write_bytes(b"\x00garbage\xff" * 100),
    "empty": lambda p, key, im: p.write_bytes(b""),
    "zip-of-something-else": lambda p, key, im: write_npz(p, other=im),
    "no-images": lambda p, key, im: write_npz(p, key=np.array(key)),
    "one-image-short": lambda p, key, im: write_npz(p, images=im[:-1], key=np.array(key)),
    "float-pixels": lambda p, key, im: write_npz(p, images=im.astype(np.float32), key=np.array(key)),
    "flat-rows": lambda p, key, im: write_npz(p, images=im.reshape(len(im), -1), key=np.array(key)),
    "another-image-shape": lambda p, key, im: write_npz(p, images=im[:, :4, :4], key=np.array(key)),
    "pickled-objects": lambda p, key, im: write_npz(p, images=np.array([None] * len(im)), key=np.array(key)),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
@pytest.mark.parametrize("shape", [None, (6, 6)], ids=["own-size", "resized"])
def test_a_broken_cache_file_is_a_warning_and_is_rewritten(tmp_path, monkeypatch, caplog, damage, shape):
    # Rule: a cache file that cannot be this folder's is a WARNING naming it; the folder is decoded
    # again, the same images come back, and the cache file is written anew (atomically: no leftovers).
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = good_set(tmp_path / "in")
    fresh = read_image_folder(root, shape, cache=False).images
    read_image_folder(root, shape)
    (cached,) = (tmp_path / "cache").iterdir()
    with np.load(cached) as z:
        key, images = str(z["key"]), z["images"]
    DAMAGE[damage](cached, key, images)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data.images"):
        np.testing.assert_array_equal(read_image_folder(root, shape).images, fresh)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{cached}: ") and "decoding the folder again" in warnings[0]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached.name]
    with np.load(cached) as z:
        assert str(z["key"]) == key and np.array_equal(z["images"], fresh)


def test_a_cache_of_another_listing_is_a_quiet_miss(tmp_path, monkeypatch, caplog):
    # Rule: a changed folder is routine: decoded again without a warning.
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    root = good_set(tmp_path / "in")
    read_image_folder(root)
    save(Image.fromarray(RAMP[:8, :8]), root / "a" / "new.png")
    with caplog.at_level(logging.DEBUG, logger="data.images"):
        assert len(read_image_folder(root).images) == 7
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
