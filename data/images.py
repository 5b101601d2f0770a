"""Read a folder of images per class (the ImageFolder layout) into greyscale arrays.

    DIR/<class>/*.png              one set, the class is the folder name
    DIR/train/<class>/*, DIR/test/<class>/*   a training and a test set

PNG, JPEG, BMP and GIF files are read with Pillow and converted to greyscale ("L"). All images of a
source must share one size unless `image_shape` (H, W) is given, which resizes every image to it.
Decoding runs in a thread pool: Pillow releases the GIL while it decodes, so every core helps.
Every problem is one DataError naming the file (or the two files whose sizes differ).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = ("train", "test")


@dataclass
class ImageSet:
    """Images (N, H, W) uint8, labels (N,) int64 indexing `classes`, and the file each came from."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    files: list[Path]


def has_split_folders(root: Path) -> bool:
    """DIR/train and DIR/test both exist: the source brings its own test set."""
    return all((Path(root) / part).is_dir() for part in SPLIT_FOLDERS)


def list_images(root: Path) -> list[tuple[Path, str]]:
    """(file, class name) of every image under root/<class>/, classes and files in sorted order.

    Hidden files (.DS_Store) are skipped; any other file that is not an image is an error, so a
    stray file is named rather than silently left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    found: list[tuple[Path, str]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            raise DataError(f"{entry}: images go in one folder per class ({root}/<class>/{entry.name})")
        for f in sorted(entry.iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{f}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
            found.append((f, entry.name))
    if not found:
        raise DataError(f"{root}: no images (expected {root}/<class>/*.png, .jpg, .bmp or .gif)")
    return found


def decode(path: Path, image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """One image as (H, W) uint8 greyscale, resized to image_shape (H, W) when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.seek(0)  # a GIF: its first frame
            grey = im.convert("L")
            if image_shape is not None and grey.size != (image_shape[1], image_shape[0]):
                grey = grey.resize((image_shape[1], image_shape[0]), Image.Resampling.BILINEAR)
            return np.asarray(grey, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({' '.join(str(e).split())[:120]})") from None


def read_image_folder(root: Path, image_shape: tuple[int, int] | None = None,
                      workers: int | None = None) -> ImageSet:
    """Every image under root/<class>/ decoded in parallel; one size, or resized to image_shape."""
    listed = list_images(root)
    workers = workers or min(32, len(os.sched_getaffinity(0)) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda item: decode(item[0], image_shape), listed, chunksize=64))
    first = arrays[0].shape
    for (f, _), a in zip(listed, arrays):
        if a.shape != first:
            h0, w0 = first
            raise DataError(f"{listed[0][0]} is {h0}x{w0} but {f} is {a.shape[0]}x{a.shape[1]} (height x width): "
                            "give --image-shape HxW to resize every image to one size")
    classes = sorted({c for _, c in listed})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for _, c in listed], dtype=np.int64)
    log.info("%s: %d images of %dx%d in %d classes", root, len(listed), first[1], first[0], len(classes))
    return ImageSet(np.stack(arrays), labels, classes, [f for f, _ in listed])


def parse_shape(text: str) -> tuple[int, int]:
    """'28x28' -> (28, 28): height x width, both >= 1."""
    h, sep, w = text.lower().partition("x")
    if not sep or not h.strip().isdigit() or not w.strip().isdigit() or int(h) < 1 or int(w) < 1:
        raise DataError(f"--image-shape {text}: expected HxW with positive integers, e.g. 28x28")
    return int(h), int(w)
