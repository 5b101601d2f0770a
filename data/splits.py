"""Seeded stratified train/validation split and whole-tensor normalisation.

The notebook split 60,000 training images 80/20 into 48,000 / 12,000; we do the same
with scikit-learn, stratified by label so every class keeps its share. `check_split` refuses, in
one line and before any splitting, data too small for that (scikit-learn would raise a traceback).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from common.errors import DataError

if TYPE_CHECKING:
    from data.dataset import Dataset

log = logging.getLogger(__name__)

MIN_PER_PART = 2
"""Images of every class that training and validation must each get. scikit-learn needs one; we ask
for two so no class is learnt, or judged, from a single image."""


@dataclass
class Splits:
    """Images (N, H, W) as read (uint8, or float32 when the pixels are not bytes) and labels as int64
    class indices (N,), kept small for Ray's object store.

    `mean`/`std` are in the data's own pixel units and come from the training split only, so
    validation and test never leak into them.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: float
    std: float
    classes: list[str]  # names, in label order
    image_shape: tuple[int, int]  # (height, width)
    checksum: str = ""  # md5 of the source arrays, recorded in reports

    @property
    def in_features(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded, label-stratified subset of size n (all indices when n >= len)."""
    if n >= len(labels):
        return np.arange(len(labels))
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(labels) - n < len(classes):
        # scikit-learn wants every class in the left-out part too, which a handful of images cannot
        # give; drop one image from each of the largest classes instead (what its rounding would do).
        rng = np.random.default_rng(seed)
        largest = np.argsort(-counts, kind="stable")[: len(labels) - n]
        drop = [int(rng.choice(np.flatnonzero(inverse == k))) for k in largest]
        return np.setdiff1d(np.arange(len(labels)), drop)
    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    return np.sort(idx)


def split_train_val(
    images: np.ndarray, labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified seeded split; val_fraction=0 keeps everything for training (the retrain case)."""
    if val_fraction <= 0:
        return images, labels, images[:0], labels[:0]
    tr, va = train_test_split(
        np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
    )
    return images[tr], labels[tr], images[va], labels[va]


# ---- How small is too small: checked before any splitting, so users get a sentence, not a traceback.


def split_sizes(n: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) sizes of n images, rounded as scikit-learn does: validation = ceil(n * fraction)."""
    if val_fraction <= 0:
        return n, 0
    n_val = math.ceil(val_fraction * n)
    return n - n_val, n_val


def fewest_per_class(
    counts: np.ndarray, n: int | np.ndarray, val_fraction: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fewest training and validation images each class can get, for any seed, when n of the images
    (`counts` per class) are kept by `stratified_subset` and then split by `split_train_val`.

    scikit-learn gives a class the floor or the ceiling of its share at each step (the random seed breaks
    ties), so floor(kept share), then floor(training share) and kept - ceil(training share), hold for
    every seed. Shares use scikit-learn's own float expressions so the floors agree with it exactly.
    Rows follow n, columns follow counts; validation is None when val_fraction is 0.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    n = np.minimum(np.atleast_1d(np.asarray(n, dtype=np.int64)), total)[:, None]
    kept = np.where(n >= total, counts, np.floor(counts / total * n))
    if val_fraction <= 0:
        return kept.astype(np.int64), None
    share = kept / n * (n - np.ceil(val_fraction * n))
    return np.floor(share).astype(np.int64), (kept - np.ceil(share)).astype(np.int64)


def _worst_off(counts: np.ndarray, n: int, val_fraction: float) -> tuple[int, str, int] | None:
    """(class index, part, images) of the class worst off at n; None when every class has enough."""
    train, val = fewest_per_class(counts, n, val_fraction)
    train_k = train[0]
    worst = train_k if val is None else np.minimum(train_k, val[0])
    k = int(np.argmin(worst))
    if worst[k] >= MIN_PER_PART:
        return None
    part = "validation" if val is not None and val[0][k] <= train_k[k] else "training"
    return k, part, int(worst[k])


def smallest_subset(counts: np.ndarray, val_fraction: float, chunk: int = 100_000) -> int | None:
    """Smallest --subset from which every larger one also works; None when not even all the images do."""
    total = int(np.sum(counts))
    last_bad = 0
    for start in range(1, total + 1, chunk):  # chunks keep a million-row CSV to a few MB
        n = np.arange(start, min(start + chunk, total + 1))
        train, val = fewest_per_class(counts, n, val_fraction)
        ok = (train >= MIN_PER_PART).all(axis=1)
        if val is not None:
            ok &= (val >= MIN_PER_PART).all(axis=1)
        bad = np.flatnonzero(~ok)
        if bad.size:
            last_bad = int(n[bad[-1]])
    return None if last_bad == total else last_bad + 1


def _need_at(total: int, val_fraction: float) -> int | None:
    """Fewest images a class needs for MIN_PER_PART in each part when `total` images are split."""
    n_train, n_val = split_sizes(total, val_fraction)
    if n_val == 0:
        return MIN_PER_PART
    if n_train == 0:
        return None
    # A class of c gets at least c*share - 1 in each part, so 3/share images always suffice.
    c = np.arange(1, math.ceil(3 * total / min(n_train, n_val)) + 2)
    share = c / total * n_train
    ok = (np.floor(share) >= MIN_PER_PART) & (c - np.ceil(share) >= MIN_PER_PART)
    return int(c[np.argmax(ok)])


def per_class_minimum(total: int, val_fraction: float, horizon: int = 1000) -> int | None:
    """Images per class a split needs, for `total` images or up to `horizon` more: rounding moves the
    need with the size, and the advice must still hold once the short class has been topped up."""
    needs = [need for n in range(total, total + horizon) if (need := _need_at(n, val_fraction)) is not None]
    return max(needs, default=None)


def _images(count: int, part: str = "") -> str:
    return f"{count} {part + ' ' if part else ''}image{'' if count == 1 else 's'}"


def check_split(
    labels: np.ndarray, val_fraction: float, subset: int | None = None, source: str = "training data",
    names: list[str] | None = None,
) -> None:
    """Refuse, before any splitting, labels too few or too uniform for a stratified split.

    The message names the class that falls short and the fix: a --subset that works (whatever the
    seed), or how many images per class `source` itself needs.
    """
    if not 0 <= val_fraction < 1:
        raise DataError(f"--val-fraction {val_fraction}: must be in [0, 1)")
    if subset is not None and subset < 1:
        raise DataError(f"--subset {subset}: must be at least 1")
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    if names is not None:  # say "class seven", not the index it was given
        classes = np.asarray(names, dtype=object)[classes]
    if len(classes) < 2:
        what = f"every training image is class {classes[0]}" if len(classes) else "no training images"
        raise DataError(f"{source}: {what}; a classifier needs at least 2 classes")
    total = int(counts.sum())
    if _worst_off(counts, total, val_fraction) is not None:
        need = per_class_minimum(total, val_fraction)
        if need is None or split_sizes(total, val_fraction)[0] == 0:
            raise DataError(f"{source}: --val-fraction {val_fraction} leaves none of its {total} images for training")
        k = int(np.argmin(counts))  # the smallest class is short whenever any is
        pct = lambda x: f"{x * 100:.3g}"  # noqa: E731
        split = (f"a stratified {pct(1 - val_fraction)}/{pct(val_fraction)} split" if val_fraction > 0
                 else "training without a validation split")
        raise DataError(f"{source}: class {classes[k]} has {_images(int(counts[k]))}; "
                        f"{split} needs at least {need} per class")
    if subset is not None and subset < total:
        short = _worst_off(counts, subset, val_fraction)
        if short is not None:
            k, part, got = short
            raise DataError(f"--subset {subset}: class {classes[k]} can get as few as {_images(got, part)} "
                            f"({MIN_PER_PART} per class needed); use --subset >= {smallest_subset(counts, val_fraction)}")


def make_splits(data: "Dataset", *, val_fraction: float = 0.2, seed: int = 0, subset: int | None = None) -> Splits:
    """Split the training pool, compute mean/std over the training split in one pass.

    `data.source` names the training data (a file) in the one-line errors of `check_split`.
    """
    train_images, train_labels, source = data.train_x, data.train_y, data.source
    check_split(train_labels, val_fraction, subset, source, data.classes)
    if subset is not None and subset > len(train_labels):
        log.warning("--subset %d is more than the %d training images in %s; using all of them",
                    subset, len(train_labels), source)
    if subset is not None:
        keep = stratified_subset(train_labels, subset, seed)
        train_images, train_labels = train_images[keep], train_labels[keep]
    tx, ty, vx, vy = split_train_val(train_images, train_labels, val_fraction, seed)
    def as_t(a: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if dtype is None else t.to(dtype)

    t = as_t(tx)
    mean, std = mean_std(t)
    return Splits(
        train_x=t, train_y=as_t(ty, torch.int64), val_x=as_t(vx), val_y=as_t(vy, torch.int64),
        test_x=as_t(data.test_x), test_y=as_t(data.test_y, torch.int64),
        mean=mean, std=std, checksum=data.checksum, classes=list(data.classes), image_shape=data.image_shape,
    )


def mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Pixel mean and std over all images, in the data's own units (no 0-255 assumed).

    A constant image set has std 0; 1 is used instead so normalising never divides by zero.
    """
    x = images.to(torch.float32)
    mean, std = float(x.mean()), float(x.std()) if x.numel() > 1 else 0.0
    return mean, (std if std > 0 and math.isfinite(std) else 1.0)


def normalise(x: torch.Tensor, mean: float, std: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W) pixels -> float32 (N, H*W) on `device`, standardised with the training mean/std.

    Done once per tensor, never per sample: the notebook's per-sample transform was its bottleneck.
    """
    # copy=True: float32 pixels would otherwise be scaled in place, inside the caller's Splits
    x = x.flatten(1).to(device, torch.float32, non_blocking=True, copy=True)
    return x.mul_(1.0 / std).sub_(mean / std)
