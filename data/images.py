"""Read a folder of images per class (the ImageFolder layout) into greyscale arrays.

    DIR/<class>/*.png              one set, the class is the folder name
    DIR/train/<class>/*, DIR/test/<class>/*   a training and a test set

PNG, JPEG, BMP and GIF files are read by data.image_file.decode, the one reader of image files
(model.predict's data.photo uses it too, so a file is the same picture wherever it is read). All
images of a source must share one size unless `image_shape` (H, W) is given, which resizes every
image to it. Every problem is one DataError naming the file (or the two files whose
sizes differ): an unreadable or too large image, a broken link, a folder where an image should be.

Decoded arrays are cached (one .npz per folder and shape, under `cache_dir()`), keyed by every
file's name, size and modification time: a search reads its data up to three times (the search,
the retrain, the report), and users run `data`, `grid`, `optuna` on one folder in turn. Decoding
small PNGs is Python-bound: threads were slower and a process pool gained little, so the cache is
what makes repeated reads fast (benchmarks/README.md, Own data).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.errors import DataError
from data.image_file import decode, header_shape, regular_file, unreadable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = ("train", "test")


@dataclass
class ImageSet:
    """Images (N, H, W) uint8, labels (N,) int64 indexing `classes`, and the file each came from."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    files: list[str]


def has_split_folders(root: Path) -> bool:
    """DIR/train and DIR/test both exist: the source brings its own test set."""
    return all((Path(root) / part).is_dir() for part in SPLIT_FOLDERS)


class Listed(NamedTuple):
    """One image file found under a class folder; size and mtime key the decoded-array cache."""

    path: str
    cls: str
    size: int
    mtime_ns: int


def list_images(root: Path) -> list[Listed]:
    """Every image under root/<class>/, classes and files in sorted order (os.scandir: a listing of
    70,000 files costs a fraction of a second, where pathlib spent seconds).

    Hidden files (.DS_Store) and subfolders are skipped; any other entry that is not an image file
    (a stray file, a broken link, a folder named like an image) is an error, so it is named rather
    than silently left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    found: list[Listed] = []
    for entry in _scan(root):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise unreadable(entry.path, FileNotFoundError())
            raise DataError(f"{entry.path}: images go in one folder per class ({root}/<class>/{entry.name})")
        for f in _scan(Path(entry.path)):
            if f.name.startswith("."):
                continue
            image_name = os.path.splitext(f.name)[1].lower() in IMAGE_SUFFIXES
            try:
                if f.is_dir() and not image_name:
                    continue
                if not image_name:
                    raise DataError(f"{f.path}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
                st = f.stat()
            except OSError as e:
                raise unreadable(f.path, e) from None
            regular_file(f.path, st)
            found.append(Listed(f.path, entry.name, st.st_size, st.st_mtime_ns))
    if not found:
        raise DataError(f"{root}: no images (expected {root}/<class>/*.png, .jpg, .bmp or .gif)")
    return found


def _scan(folder: Path) -> list[os.DirEntry]:
    """A folder's entries sorted by name; a folder that cannot be listed is one DataError."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"{folder}: cannot be listed ({e.strerror or e})") from None


CACHE_ENV = "DIGIT_TUNE_CACHE"  # a folder for decoded image folders, or "off"
CACHE_VERSION = 3  # bump when decoding changes, so old caches are never used (2: `greyscale`, 3: EXIF orientation)


def cache_dir() -> Path | None:
    """Where decoded folders are cached: $DIGIT_TUNE_CACHE, else $XDG_CACHE_HOME (~/.cache)/digit-tune/images."""
    chosen = os.environ.get(CACHE_ENV, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digit-tune" / "images"


def _cache_paths(root: Path, listed: list[Listed], image_shape) -> tuple[Path | None, str]:
    """(the cache file for this folder and shape, a key of every file's name, size and mtime)."""
    folder = cache_dir()
    where = f"{CACHE_VERSION}|{root.resolve()}|{image_shape}"
    key = hashlib.sha256(where.encode())
    key.update("\n".join(f"{f.cls}/{os.path.basename(f.path)}|{f.size}|{f.mtime_ns}" for f in listed).encode())
    name = hashlib.sha256(where.encode()).hexdigest()[:24] + ".npz"
    return (folder / name if folder else None), key.hexdigest()


def _from_cache(path: Path | None, key: str, listed: list[Listed], image_shape: tuple[int, int] | None = None
                ) -> np.ndarray | None:
    """The cached images when the cache holds exactly this listing; anything else is a miss.

    The cache can never break a run: a file cut short, garbage, an npz without the two arrays or
    with images that cannot be this folder's (count, dtype, or a shape other than image_shape or,
    without it, the first file's header size) is a WARNING naming it, and the folder is decoded
    again (and the file rewritten). Another listing's file is a quiet miss.
    """
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                log.debug("%s: cached for another listing of the folder, decoding again", path)
                return None
            images = z["images"]
    except Exception as e:  # BadZipFile, EOFError, ValueError, KeyError, OSError, zlib.error...: all a miss
        log.warning("%s: unreadable image cache (%s: %s); decoding the folder again", path, type(e).__name__,
                    " ".join(str(e).split())[:120])
        return None
    shape = image_shape or header_shape(listed[0].path)
    if shape is None:  # the first file cannot be opened now: decoding names it
        return None
    wrong = _wrong_images(images, len(listed), shape)
    if wrong:
        log.warning("%s: image cache does not fit the folder (%s); decoding the folder again", path, wrong)
        return None
    return images


def _wrong_images(images: np.ndarray, n: int, shape: tuple[int, int]) -> str:
    """What makes cached arrays unusable as n images of shape (H, W), or ''."""
    if images.dtype != np.uint8 or images.ndim != 3:
        return f"{images.dtype} array of shape {images.shape}, expected uint8 (N, H, W)"
    if len(images) != n:
        return f"{len(images)} images for {n} files"
    if images.shape[1:] != tuple(shape):
        return f"images of {images.shape[1]}x{images.shape[2]}, expected {shape[0]}x{shape[1]}"
    return ""


def _to_cache(path: Path | None, key: str, images: np.ndarray) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=images, key=np.array(key))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning("could not cache decoded images in %s (%s); set %s=off to stop trying", path.parent, e, CACHE_ENV)


def read_image_folder(root: Path, image_shape: tuple[int, int] | None = None, cache: bool = True) -> ImageSet:
    """Every image under root/<class>/ as one array; one size, or resized to image_shape.

    Decoded once per change of the folder: later reads come from the cache (see module docstring).
    """
    root = Path(root)
    listed = list_images(root)
    where, key = _cache_paths(root, listed, image_shape) if cache else (None, "")
    images = _from_cache(where, key, listed, image_shape)
    if images is None:
        arrays = [decode(f.path, image_shape) for f in listed]
        first = arrays[0].shape
        for f, a in zip(listed, arrays):
            if a.shape != first:
                raise DataError(f"{listed[0].path} is {first[0]}x{first[1]} but {f.path} is {a.shape[0]}x{a.shape[1]} "
                                "(height x width): give --image-shape HxW to resize every image to one size")
        images = np.stack(arrays)
        _to_cache(where, key, images)
    else:
        log.info("%s: decoded images from the cache %s", root, where)
    classes = sorted({f.cls for f in listed})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[f.cls] for f in listed], dtype=np.int64)
    log.info("%s: %d images of %dx%d in %d classes", root, len(listed), images.shape[1], images.shape[2], len(classes))
    return ImageSet(images, labels, classes, [f.path for f in listed])


def parse_shape(text: str) -> tuple[int, int]:
    """'28x28' -> (28, 28): height x width, both >= 1."""
    h, sep, w = text.lower().partition("x")
    if not sep or not h.strip().isdigit() or not w.strip().isdigit() or int(h) < 1 or int(w) < 1:
        raise DataError(f"--image-shape {text}: expected HxW with positive integers, e.g. 28x28")
    return int(h), int(w)
