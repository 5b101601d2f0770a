"""One image file -> (H, W) uint8 greyscale: the one reader, so a file is the same picture wherever
it is read (--image-dir training data and its cache, searches, model.predict through data.photo).

Pillow's modes are mapped on purpose (`greyscale`): 16-bit samples keep their high byte,
transparency is composited onto a page (`on_page`), an animation gives its first frame, and a
photo's EXIF orientation is applied (a phone stores a portrait photo sideways with a tag saying
so). Every reason a file cannot be used is one DataError naming it: gone, a broken link, a folder,
a pipe, not an image, corrupt, or larger than Pillow's decompression-bomb limit.
"""
from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

ORIENTATION = 0x0112  # the EXIF tag of how the camera was held (1: as stored)
SIDEWAYS = (5, 6, 7, 8)  # its values that turn the picture a quarter: height and width swap


def unreadable(path: str | Path, e: OSError) -> DataError:
    """The one line for a file the system will not hand over (gone, a broken link, no permission)."""
    if os.path.islink(path) and not os.path.exists(path):
        return DataError(f"{path}: a broken link (to {os.readlink(path)}, which does not exist)")
    return DataError(f"{path}: cannot be read ({e.strerror or e})")


def regular_file(path: str | Path, st: os.stat_result) -> None:
    """Only a regular file is an image: a folder named x.png is named, and a FIFO would block a read forever."""
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a device, socket or pipe), so not an image file")


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # greyscale modes on a 16-bit scale
ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")


def greyscale(im: Image.Image) -> np.ndarray:
    """Any Pillow image as (H, W) uint8 greyscale, each mode mapped on purpose rather than by convert("L"):

    - 16-bit grey ("I;16*"; "I" and "F" are how other Pillow versions and plugins hold the same
      samples) keeps the high byte, as libpng's strip_16 and Pillow's own reading of 16-bit colour
      PNGs do: a 16-bit save of 8-bit values (v * 257 or v << 8) gives back v, where convert("L")
      clips everything above 255 to white;
    - "1", "L", "P", "RGB", "CMYK", "YCbCr" and the rest go through RGB to ITU-R 601 luminance;
    - transparency (an alpha band, a palette's or a tRNS colour key) is composited onto the page,
      see `on_page`.
    """
    transparency = im.info.get("transparency")
    if im.mode in SIXTEEN_BIT:
        samples = np.nan_to_num(np.asarray(im)) if im.mode == "F" else np.asarray(im)
        grey = (np.clip(samples, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
        if not isinstance(transparency, int):
            return grey
        return on_page(grey, np.where(samples == transparency, 0, 255).astype(np.uint8))
    if im.mode in ALPHA_MODES or transparency is not None or (im.mode == "P" and im.palette.mode == "RGBA"):
        rgba = im.convert("RGBA")
        return on_page(np.asarray(rgba.convert("L")), np.asarray(rgba.getchannel("A")))
    if im.mode == "L":
        return np.asarray(im)
    if im.mode not in ("1", "RGB"):
        im = im.convert("RGB")  # P, CMYK, YCbCr, RGBX, HSV, LAB: one luminance formula for every colour
    return np.asarray(im.convert("L"))


def on_page(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite greyscale ink with its alpha onto a page of the colour opposite to the ink.

    A transparent pixel's own colour is arbitrary (drawing tools store black, RGB 0, under alpha
    0), so the page must be chosen: it is white under dark ink (alpha-weighted mean luminance of
    127.5 or less) and black under light ink. A black drawing on a transparent canvas is then a
    black drawing on white paper, and a white, MNIST-like one stays white on black: the drawing
    always stands out, as it does in the viewer its maker used. A fully transparent image is a
    blank white page.
    """
    a = alpha.astype(np.uint32)
    if a.min() == 255:
        return np.ascontiguousarray(grey, dtype=np.uint8)
    total = int(a.sum())
    page = 0 if total and int((grey * a).sum()) > 127.5 * total else 255
    return ((grey * a + page * (255 - a) + 127) // 255).astype(np.uint8)


def upright(im: Image.Image) -> Image.Image:
    """The image as it was seen when taken: rotated or mirrored as its EXIF orientation says."""
    from PIL import ImageOps

    if im.getexif().get(ORIENTATION, 1) in (None, 1):
        return im
    return ImageOps.exif_transpose(im)


def decode(path: str | Path, image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as (H, W) uint8 greyscale (`greyscale`; an animation's first frame, upright), resized
    to image_shape (H, W) when given. Training, searches and model.predict all read files here.

    Every reason the file cannot be used is one DataError naming it: gone, a broken link, a folder,
    not an image, corrupt, or larger than Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS,
    ~89 million pixels: above it Pillow only warns up to twice that, here it is refused, since
    such a file is a memory hazard to a run, not a digit).
    """
    from PIL import Image

    try:
        regular_file(path, os.stat(path))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.seek(0)  # an animated GIF or PNG: its first frame
                grey = greyscale(upright(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: too large to decode safely ({' '.join(str(e).split())[:120]})") from None
    except OSError as e:
        if e.errno is not None:  # the file system's error (gone, no permission), not the decoder's
            raise unreadable(path, e) from None
        raise DataError(f"{path}: not a readable image ({' '.join(str(e).split())[:120]})") from None
    except DataError:
        raise
    except Exception as e:  # Pillow's plugins raise SyntaxError, EOFError, struct.error, ... on corrupt files
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {' '.join(str(e).split())[:100]})"
                        ) from None
    if image_shape is not None and grey.shape != tuple(image_shape):
        resized = Image.fromarray(grey).resize((image_shape[1], image_shape[0]), Image.Resampling.BILINEAR)
        grey = np.asarray(resized, dtype=np.uint8)
    return grey


def header_shape(path: str | Path) -> tuple[int, int] | None:
    """(H, W) that `decode` gives a file without a target shape, from its header alone (no pixels are
    decoded; EXIF orientations 5-8 swap the sides), or None if it cannot be opened."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                return (w, h) if im.getexif().get(ORIENTATION, 1) in SIDEWAYS else (h, w)
    except Exception:  # noqa: BLE001 — any reason: decode() names it in one line
        return None
