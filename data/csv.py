"""Read and write image sets as CSV: a label column anywhere in the header plus one column per pixel.

This is the MNIST notebook's format (`label` + 784 pixels) generalised to a user's own images: any
image size, any pixel scale (0-255, 0-16, floats) and any labels (integers or strings such as
'Ankle boot'). Parsing goes through pandas' C parser in one pass for clean files (int16 pixels,
else float32); only when that fails is the file re-read to pin the first bad cell down to its
row, column and value, so the user can fix it in one go.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from common.errors import DataError
from data.idx import atomic_write_shared

logger = logging.getLogger(__name__)

LABEL = "label"
_WHOLE = r"[+-]?[0-9]+"  # a label spelled like this is a number; anything else makes all labels strings


def _row(i: int) -> str:
    """Name a data row both ways: 1-based row number and its line in the file (header is line 1)."""
    return f"row {i + 1} (line {i + 2})"


def _clip(text: str, limit: int = 24) -> str:
    """Shorten a cell or header for the one-line error (a binary file can make a huge 'header')."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_frame(path: Path, **kwargs: object) -> pd.DataFrame:
    """pandas.read_csv with every library failure turned into a one-line DataError."""
    try:
        with warnings.catch_warnings():
            # Without index_col=False a surplus first field silently becomes the row index, shifting
            # every column; with it pandas drops surplus fields with only this warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, index_col=False, **kwargs)
    except pd.errors.ParserWarning as e:
        raise DataError(f"{path}: malformed CSV: a row has more fields than the header") from e
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path}: empty file (no header row)") from e
    except pd.errors.ParserError as e:
        detail = str(e).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise DataError(f"{path}: malformed CSV: {detail}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text CSV file ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e


def _unlike_pixels(columns: list[str]) -> list[str]:
    """Up to 3 columns not named like the rest (pixel0, pixel1, ...): the likely label columns."""
    import collections

    stems = [c.rstrip("0123456789") for c in columns]
    common, _ = collections.Counter(stems).most_common(1)[0]
    odd = [c for c, s in zip(columns, stems) if s != common or s == c]
    return odd[:3] if len(odd) < len(columns) / 2 else []


def _find_label(path: Path, columns: list[str], label_column: str) -> int:
    """Return the label column's index; fail, listing what the header holds, when it is absent."""
    if label_column not in columns:
        shown = ", ".join(repr(_clip(c)) for c in columns[:6]) + (", ..." if len(columns) > 6 else "")
        if columns and all(c.lstrip("-").replace(".", "", 1).isdigit() for c in columns[:6]):
            found, hint = f"{shown}; is the header row missing?", ""
        else:
            found, hint = shown, "; give --label-column NAME to use another column as the label"
            odd = _unlike_pixels(columns)
            if odd:
                hint += f" (perhaps {' or '.join(repr(_clip(c)) for c in odd)})"
        raise DataError(
            f"{path}: no '{label_column}' column (found {len(columns)} columns: {found}){hint}"
        )
    if columns.count(label_column) > 1:
        raise DataError(f"{path}: {columns.count(label_column)} columns named '{label_column}'")
    if len(columns) == 1:
        raise DataError(f"{path}: no pixel columns besides '{label_column}'")
    return columns.index(label_column)


def _near_square(n: int) -> tuple[int, int] | None:
    """The factor pair h x w of n (h <= w) closest to square; None when n is prime."""
    for h in range(math.isqrt(n), 1, -1):
        if n % h == 0:
            return h, n // h
    return None


def _image_shape(path: Path, n_pixels: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    """Check a given (H, W) against the pixel count, or infer a square one."""
    if image_shape is not None:
        h, w = (int(v) for v in image_shape)
        if h <= 0 or w <= 0:
            raise DataError(f"{path}: --image-shape {h}x{w} must be positive")
        if h * w != n_pixels:
            raise DataError(
                f"{path}: {n_pixels} pixel columns do not fill --image-shape {h}x{w} ({h * w} pixels)"
            )
        return h, w
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        pair = _near_square(n_pixels)
        example = f" (e.g. {pair[0]}x{pair[1]})" if pair else ""
        raise DataError(
            f"{path}: {n_pixels} pixel columns are not a square image; give --image-shape HxW{example}"
        )
    return side, side


def _bad_cell(text: str, is_label: bool) -> str | None:
    """Say what is wrong with one cell's text, or None when it is usable."""
    text = text.strip()
    if not text:
        return "empty label" if is_label else "empty cell"
    if is_label:
        return None
    try:
        value = float(text.replace("_", "?"))  # Python reads '1_0' as 10; the CSV parser does not
    except ValueError:
        return f"non-numeric value {_clip(text)!r}"
    if not math.isfinite(value):
        return f"not a finite number {_clip(text)!r}"
    if abs(value) > float(np.finfo(np.float32).max):
        return f"value {_clip(text)!r} too large for a float32 pixel"
    return None


def _diagnose(path: Path, columns: list[str], label_at: int) -> NoReturn:
    """Re-read the file that failed the fast parse and report its first bad cell in file order."""
    df = _read_frame(path, low_memory=False, na_filter=False)  # clean columns still infer to numbers
    first: tuple[int, int, str] | None = None  # (row, column index, message)
    for j in range(df.shape[1]):
        col = df.iloc[:, j]
        if j != label_at and pd.api.types.is_numeric_dtype(col):
            with np.errstate(over="ignore"):
                bad = ~np.isfinite(col.to_numpy(dtype=np.float64).astype(np.float32))
        elif j == label_at:
            bad = (col.astype(str).str.strip() == "").to_numpy()
        else:
            numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(over="ignore"):
                bad = ~np.isfinite(numbers.astype(np.float32))
        for i in np.flatnonzero(bad):
            if first is not None and (int(i), j) >= first[:2]:
                break
            what = _bad_cell(str(col.iloc[i]), j == label_at)
            if what is not None:
                first = (int(i), j, what)
                break
    if first is None:  # the fast parse failed for a reason no single cell shows
        raise DataError(f"{path}: cannot read the pixel columns as numbers")
    i, j, what = first
    raise DataError(f"{path}: {_row(i)}, column '{columns[j]}': {what}")


def _parse(path: Path, label_at: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One C-parser pass: pixels as int16 (MNIST: 94 MB, not 377), else float32; labels as text
    (None when label_at is -1: no label column). (None, None) when neither pass yields finite numbers."""
    for pixel_type in (np.int16, np.float32):
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                df = _read_frame(path, dtype=defaultdict(lambda: pixel_type, {label_at: str} if label_at >= 0 else {}),
                                 na_filter=False)
        except (ValueError, OverflowError, TypeError) as e:
            logger.debug("%s: %s parse failed (%s)", path, np.dtype(pixel_type).name, e)
            if "invalid literal" in str(e):  # text no number parser takes: skip the float32 pass
                break
            continue
        labels = df.pop(df.columns[label_at]).to_numpy(dtype=object) if label_at >= 0 else None
        pixels = df.to_numpy()
        if pixel_type is np.float32 and not np.isfinite(pixels).all():
            break
        return pixels, labels
    return None, None


def _labels(path: Path, text: np.ndarray, name: str) -> np.ndarray:
    """int64 when every label is a whole number, else the stripped strings."""
    labels = pd.Series(text, dtype=object).str.strip()
    empty = (labels == "").to_numpy()
    if empty.any():
        raise DataError(f"{path}: {_row(int(np.argmax(empty)))}, column '{name}': empty label")
    strings = labels.to_numpy(dtype=str)
    if labels.str.fullmatch(_WHOLE).all():
        try:
            return strings.astype(np.int64)
        except OverflowError:
            logger.debug("%s: integer labels beyond int64; kept as strings", path)
    return strings


def _images(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 when every pixel is a whole number in 0..255, else float32; shaped (N, H, W)."""
    if pixels.dtype.kind == "f":
        whole = pixels.size == 0 or bool((pixels == np.round(pixels)).all())
    else:
        whole = True
    if whole and (pixels.size == 0 or (pixels.min() >= 0 and pixels.max() <= 255)):
        out = pixels.astype(np.uint8)
    else:
        out = pixels.astype(np.float32)
    return out.reshape(-1, *shape)


def read_csv(
    path: str | Path, label_column: str = LABEL, image_shape: tuple[int, int] | None = None,
    require_label: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read images (N, H, W) in the file's pixel-column order and labels (N,).

    With require_label=False (images to predict) a file without the label column is all pixels,
    and its labels are None.

    Images are uint8 when every pixel is a whole number in 0..255, else float32. Labels are int64
    when every label is a whole number, else str (stripped of surrounding spaces). Without
    `image_shape` the image must be square; every problem is one DataError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    header = _read_frame(path, header=None, nrows=1, dtype=str, na_filter=False)  # names unmangled
    columns = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    unlabelled = not require_label and label_column not in columns
    label_at = -1 if unlabelled else _find_label(path, columns, label_column)
    shape = _image_shape(path, len(columns) - (label_at >= 0), image_shape)
    pixels, text = _parse(path, label_at)
    if pixels is None:
        _diagnose(path, columns, label_at)
    if len(pixels) == 0:
        raise DataError(f"{path}: header but no data rows")
    labels = None if text is None else _labels(path, text, label_column)
    images = _images(pixels, shape)
    logger.debug("read %s: %d images of %dx%d %s, labels %s", path, len(images), *shape,
                 images.dtype, None if labels is None else labels.dtype)
    return images, labels


def write_csv(
    path: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    label_position: int = 0,
    label_column: str = LABEL,
) -> None:
    """Write (N, H, W) or (N, P) images and (N,) labels atomically, as a header row (`label_column`
    at `label_position`, then pixel0..pixel{P-1}) and one row per image. Integer pixels are written
    as integers and floats as floats, so read_csv gives back the same values."""
    path = Path(path)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim not in (2, 3) or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{path}: cannot write images of shape {images.shape} with labels of shape {labels.shape}; "
            "expected (N, H, W) or (N, P) and (N,)"
        )
    n_pixels = math.prod(images.shape[1:])
    if not 0 <= label_position <= n_pixels:
        raise DataError(f"{path}: label_position {label_position} outside 0-{n_pixels}")
    names = [f"pixel{k}" for k in range(n_pixels)]
    if label_column in names:
        raise DataError(f"{path}: label column '{label_column}' clashes with a pixel column")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise DataError(f"{path}: cannot write NaN or infinite pixels")
    frame = pd.DataFrame(images.reshape(len(images), n_pixels), columns=names)
    frame.insert(label_position, label_column, labels)
    try:
        atomic_write_shared(path, lambda tmp: frame.to_csv(tmp, index=False))
    except OSError as e:
        raise DataError(f"{path}: cannot write: {e.strerror or e}") from e
    logger.debug("wrote %s: %d images", path, len(images))
