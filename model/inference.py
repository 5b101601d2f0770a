"""Inputs for a saved model, its class probabilities, and the rows a prediction prints.

Pure functions for `model.predict`: files and folders become one array of inputs in the training
data's pixel units (image files prepared as MNIST's digits were, see data.photo; CSV and IDX rows
used as they are), and the model turns them into probabilities in batches.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.errors import DataError, InputError
from data.images import IMAGE_SUFFIXES
from data.splits import normalise
from model.card import ModelCard

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv",)
IDX_MARKERS = ("idx", "ubyte")  # an IDX file's name holds one of these (train-images-idx3-ubyte.gz)


@dataclass
class Inputs:
    """What was read: one name and one (H, W) array per input, and one message per file that failed."""

    names: list[str] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def kind(path: Path) -> str:
    """'image', 'csv', 'idx' or '' by the file's name."""
    name = path.name.lower()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return "csv"
    if any(m in name for m in IDX_MARKERS):
        return "idx"
    return ""


def expand(arguments: list[str]) -> tuple[list[Path], list[str]]:
    """(files in order, errors): folders become their image files (recursively, sorted, hidden ones
    skipped); an empty folder is an InputError, a missing path an error for that path only."""
    files, errors = [], []
    for arg in arguments:
        path = Path(arg).expanduser()
        if path.is_dir():
            # not is_file(): a dangling symlink is listed too, so its reading names it as unreadable
            found = sorted(p for p in path.rglob("*") if kind(p) == "image" and not p.is_dir()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise InputError(f"{path}: no image files in this folder (expected {', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file() or path.is_symlink():  # a broken link: its reading names it so
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def _rows(path: Path, images: np.ndarray, card: ModelCard) -> np.ndarray:
    """CSV or IDX rows, used as they are: they must already have the model's image shape."""
    if images.ndim != 3 or tuple(images.shape[1:]) != tuple(card.image_shape):
        got = "x".join(str(v) for v in images.shape[1:]) if images.ndim == 3 else f"shape {images.shape}"
        raise DataError(f"{path}: images are {got} but the model takes {card.image_shape[0]}x{card.image_shape[1]}")
    return images.astype(np.float32)


def _read_rows(path: Path, card: ModelCard, label_column: str) -> np.ndarray:
    """A CSV's images: square rows by their own count, other counts as the model's H x W when they fit."""
    from data.csv import read_csv

    try:
        return read_csv(path, label_column, None, require_label=False)[0]
    except DataError as e:
        if "not a square image" not in str(e):
            raise
    h, w = card.image_shape
    try:
        return read_csv(path, label_column, (h, w), require_label=False)[0]
    except DataError:
        raise DataError(f"{path}: its rows are not {h}x{w} images ({h * w} pixels), which the model takes") from None


def read_inputs(files: list[Path], card: ModelCard, label_column: str = "label", as_is: bool = False,
                workers: int | None = None) -> Inputs:
    """Every input of `files` (expand's list), as (H, W) float32 arrays for `card`'s model."""
    from data.idx import read_idx
    from data.photo import read_photos

    out = Inputs()
    photos = [f for f in files if kind(f) == "image"]
    read = dict(zip(photos, read_photos([str(f) for f in photos], card.image_shape, card.pixel_range, as_is,
                                        workers)))
    for f in files:
        try:
            k = kind(f)
            if k == "image":
                got = read[f]
                if isinstance(got, str):
                    raise DataError(got)
                out.names.append(str(f))
                out.arrays.append(got)
                continue
            if k == "csv":
                images = _read_rows(f, card, label_column)
            elif k == "idx":
                images = read_idx(f)
            else:
                raise DataError(f"{f}: not an image, CSV or IDX file (expected {', '.join(IMAGE_SUFFIXES)}, .csv "
                                "or an IDX file such as t10k-images-idx3-ubyte)")
            rows = _rows(f, images, card)
            out.names += [f"{f}[{i}]" for i in range(len(rows))]
            out.arrays += list(rows)
        except DataError as e:
            out.errors.append(str(e))
    return out


@torch.inference_mode()
def probabilities(model: torch.nn.Module, card: ModelCard, images: np.ndarray, batch_size: int = 4096
                  ) -> np.ndarray:
    """Softmax over the classes for (N, H, W) pixels in the data's units, normalised as in training."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i: i + batch_size], dtype=np.float32))
        out.append(torch.softmax(model(normalise(x, card.mean, card.std)), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(card.classes)), np.float32)


def top_k(probs: np.ndarray, classes: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
    """Per input, the k most likely (class name, probability), most likely first."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


def records(names: list[str], probs: np.ndarray, classes: list[str], k: int = 3) -> list[dict]:
    """One dict per input: file, prediction (class name), probability, top (k pairs)."""
    return [{"file": n, "prediction": top[0][0], "probability": top[0][1], "top": top}
            for n, top in zip(names, top_k(probs, classes, k))]
