"""Read and write the notebook's CSV format: a `label` column anywhere plus 784 pixel columns.

Parsing goes through pandas' C parser (a fast int16 pass for clean files);
only when that fails is the file re-read to pin the first bad cell down to
its row, column and value, so the user can fix it in one go.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from common.errors import DataError
from data.idx import atomic_write_shared

logger = logging.getLogger(__name__)

LABEL = "label"
SIDE = 28
N_PIXELS = SIDE * SIDE


def _row(i: int) -> str:
    """Name a data row both ways: 1-based row number and its line in the file (header is line 1)."""
    return f"row {i + 1} (line {i + 2})"


def _clip(text: str, limit: int = 24) -> str:
    """Shorten a cell or header for the one-line error (a binary file can make a huge 'header')."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_frame(path: Path, **kwargs: object) -> pd.DataFrame:
    """pandas.read_csv with every library failure turned into a one-line DataError."""
    try:
        return pd.read_csv(path, **kwargs)
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


def _check_columns(path: Path, columns: list[str]) -> int:
    """Return the label column's index; fail unless there are exactly 784 other columns."""
    if LABEL not in columns:
        shown = ", ".join(repr(_clip(c)) for c in columns[:6]) + (", ..." if len(columns) > 6 else "")
        hint = ""
        if columns and all(c.lstrip("-").replace(".", "", 1).isdigit() for c in columns[:6]):
            hint = "; is the header row missing?"
        raise DataError(f"{path}: no '{LABEL}' column (found {len(columns)} columns: {shown}{hint})")
    n_pixels = len(columns) - 1
    if n_pixels != N_PIXELS:
        raise DataError(
            f"{path}: found {n_pixels} pixel columns besides '{LABEL}', expected {N_PIXELS} ({SIDE}x{SIDE})"
        )
    return columns.index(LABEL)


def _diagnose(path: Path, df: pd.DataFrame) -> np.ndarray:
    """Find the first cell (in file order) that is empty, non-numeric or fractional; else return numbers."""
    first: tuple[int, int, str] | None = None  # (row, column index, message)
    numbers = np.empty(df.shape, dtype=np.float64)
    for j, name in enumerate(df.columns):
        col = df.iloc[:, j]
        numeric = col if pd.api.types.is_integer_dtype(col) else pd.to_numeric(col, errors="coerce")
        numbers[:, j] = values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        empty = col.isna().to_numpy()
        text_bad = np.isnan(values) & ~empty
        with np.errstate(invalid="ignore"):
            frac = ~np.isnan(values) & ~(np.isfinite(values) & (values == np.round(values)))
        for mask, what in ((empty, "empty cell"), (text_bad, "non-numeric value"), (frac, "not a whole number")):
            if mask.any():
                i = int(np.argmax(mask))
                if first is None or (i, j) < first[:2]:
                    value = col.iloc[i]
                    shown = f" {_clip(value)!r}" if isinstance(value, str) else f" {float(value):g}"
                    shown = "" if what == "empty cell" else shown
                    first = (i, j, f"{what}{shown}")
    if first is not None:
        i, j, what = first
        raise DataError(f"{path}: {_row(i)}, column '{df.columns[j]}': {what}")
    # Clip absurd magnitudes so the cast is defined; anything outside 0-255 is reported later anyway.
    return np.clip(numbers, -(2**31), 2**31).astype(np.int64)


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read images as uint8 (N, 28, 28), in the file's pixel-column order, and labels as int64 (N,)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    header = _read_frame(path, nrows=0)
    columns = [str(c).strip() for c in header.columns]
    label_at = _check_columns(path, columns)
    try:
        # Fast path: clean files parse straight to small ints (a 60000-row file is ~94 MB, not 377).
        with np.errstate(invalid="ignore", over="ignore"):
            values = _read_frame(path, dtype=np.int16).to_numpy()
    except DataError:
        raise
    except (ValueError, OverflowError, TypeError) as e:
        logger.debug("%s: fast parse failed (%s); locating the bad cell", path, e)
        df = _read_frame(path, low_memory=False)
        df.columns = columns
        values = _diagnose(path, df)
    if len(values) == 0:
        raise DataError(f"{path}: header but no data rows")

    labels = values[:, label_at].astype(np.int64)
    bad = (labels < 0) | (labels > 9)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{path}: {_row(i)}, column '{LABEL}': label {labels[i]} outside 0-9")
    pixels = np.delete(values, label_at, axis=1)
    bad_px = (pixels < 0) | (pixels > 255)
    if bad_px.any():
        i, j = divmod(int(np.argmax(bad_px)), N_PIXELS)
        name = columns[j + (j >= label_at)]
        raise DataError(f"{path}: {_row(i)}, column '{name}': pixel {pixels[i, j]} outside 0-255")
    images = pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)
    logger.debug("read %s: %d images", path, len(images))
    return images, labels


def write_csv(
    path: str | Path, images: np.ndarray, labels: np.ndarray, label_position: int = 0
) -> None:
    """Write images and labels as a header row ('label' at `label_position`, pixel0..pixel783), atomically."""
    path = Path(path)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim < 2 or images[0].size != N_PIXELS or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{path}: cannot write images of shape {images.shape} with labels of shape {labels.shape}; "
            f"expected (N, {SIDE}, {SIDE}) and (N,)"
        )
    if not 0 <= label_position <= N_PIXELS:
        raise DataError(f"{path}: label_position {label_position} outside 0-{N_PIXELS}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must lie in 0-9, got {labels.min()}..{labels.max()}")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DataError(f"{path}: pixels must lie in 0-255, got {images.min()}..{images.max()}")
    pixels = images.reshape(len(images), N_PIXELS).astype(np.int64)
    table = np.insert(pixels, label_position, labels.astype(np.int64), axis=1)
    columns = [f"pixel{k}" for k in range(N_PIXELS)]
    columns.insert(label_position, LABEL)
    frame = pd.DataFrame(table, columns=columns)
    try:
        atomic_write_shared(path, lambda tmp: frame.to_csv(tmp, index=False))
    except OSError as e:
        raise DataError(f"{path}: cannot write: {e.strerror or e}") from e
    logger.debug("wrote %s: %d images", path, len(images))
