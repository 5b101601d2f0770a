"""A data set as read from any source: images, labels as class indices, the class names and the image shape.

Every source (IDX, CSV, image folders) ends here, so the rules that make a user's own set usable are
written once: labels of any kind become 0..K-1 with their original values kept as names, pixels keep
their values (uint8 when they fit, float32 otherwise), and a source without a test set gets a seeded
stratified one held out of its training images.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from common.errors import DataError

log = logging.getLogger(__name__)

TEST_SPLIT_SEED = 0
"""Seed of a held-out test set. Fixed, not --seed: every command and every seed is tested on the same images."""


@dataclass
class Dataset:
    """Images (N, H, W) uint8 or float32, labels int64 in 0..K-1 indexing `classes`."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    source: str  # the training data's file or folder, for errors and logs
    test_source: str  # the test data's file or folder, or "held out of <source>"
    checksum: str = ""  # md5 of the arrays as read, recorded in reports

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.train_x.shape[1]), int(self.train_x.shape[2])


def checksum(arrays: tuple[np.ndarray, ...]) -> str:
    """md5 over the arrays' bytes as read: identifies the exact data a report was made from."""
    h = hashlib.md5()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def pixels(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 when every value is a whole number in 0..255 (MNIST's 47 MB stays 47 MB), else float32."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if x.size and not np.isfinite(x).all():
        raise DataError(f"{source}: images hold NaN or infinite pixel values")
    if x.size and x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)):
        return x.astype(np.uint8)
    return x.astype(np.float32)


def _names(values: np.ndarray) -> list[str]:
    """Sorted distinct label values as names: numbers in numeric order, strings in text order."""
    return [str(v) for v in np.unique(values)]


def encode_labels(train: np.ndarray, test: np.ndarray, source: str, test_source: str
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(train codes, test codes, class names): the training set's distinct labels, sorted, become 0..K-1.

    A test label the training set lacks cannot be learnt, and a single class cannot be classified:
    both are one DataError naming the file.
    """
    numeric = np.issubdtype(train.dtype, np.integer) and np.issubdtype(test.dtype, np.integer)
    if not numeric:  # strings (or a mix): compare as text, as the files spell them
        train, test = train.astype(str), test.astype(str)
    values = np.unique(train)
    if len(values) < 2:
        what = f"every training image is class {values[0]}" if len(values) else "no training images"
        raise DataError(f"{source}: {what}; a classifier needs at least 2 classes")
    codes = np.searchsorted(values, test)
    known = (codes < len(values)) & (values[np.minimum(codes, len(values) - 1)] == test)
    if not known.all():
        missing = np.unique(test[~known])
        shown = ", ".join(repr(str(v)) for v in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(f"{test_source}: test label(s) {shown} not among the {len(values)} classes of "
                        f"the training data ({source})")
    return np.searchsorted(values, train).astype(np.int64), codes.astype(np.int64), _names(values)


def hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float, source: str, classes: list[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded stratified (train_x, train_y, test_x, test_y) split of a source without a test set.

    `y` are class codes; every class needs two images, one for each side, and the one that has fewer
    is named.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise DataError(f"--test-fraction {fraction}: must be in (0, 1) for {source}, which has no test set")
    counts = np.bincount(y)
    if len(y) and counts.min() < 2:
        k = int(np.argmin(counts))
        raise DataError(f"{source}: class {classes[k]} has {int(counts[k])} image(s); holding out a stratified test "
                        "set needs at least 2 per class")
    n_test = int(np.ceil(fraction * len(y)))
    if n_test < len(counts) or len(y) - n_test < len(counts):
        raise DataError(f"{source}: {len(y)} images cannot give every one of {len(counts)} classes a "
                        f"training and a test image at --test-fraction {fraction}")
    tr, te = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y, random_state=TEST_SPLIT_SEED)
    log.warning("%s has no test set: held out %d of its %d images (--test-fraction %g, stratified, seed %d)",
                source, len(te), len(y), fraction, TEST_SPLIT_SEED)
    return x[tr], y[tr], x[te], y[te]


def check_pair(x: np.ndarray, y: np.ndarray, source: str, part: str) -> None:
    """Images (N, H, W) with one label each."""
    if x.ndim != 3:
        raise DataError(f"{source}: {part} images have shape {tuple(x.shape)}, expected (N, height, width)")
    if len(x) != len(y):
        raise DataError(f"{source}: {part} has {len(x)} images but {len(y)} labels")


def make_dataset(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray] | None,
                 source: str, test_source: str | None, test_fraction: float) -> Dataset:
    """Check, encode and (without a test set) split raw images and labels into a Dataset.

    The checksum is over the arrays as the source gave them, before any conversion.
    """
    digest = checksum((*train, *(test or ())))
    tx, ty = train
    check_pair(tx, ty, source, "training")
    tx = pixels(tx, source)
    if test is None:
        ty, _, classes = encode_labels(ty, ty[:0], source, source)
        tx, ty, sx, sy = hold_out_test(tx, ty, test_fraction, source, classes)
        return Dataset(tx, ty, sx, sy, classes, source, f"held out of {source}", digest)
    sx, sy = test
    test_source = test_source or source
    check_pair(sx, sy, test_source, "test")
    sx = pixels(sx, test_source)
    if sx.shape[1:] != tx.shape[1:]:
        raise DataError(f"{test_source}: test images are {sx.shape[1]}x{sx.shape[2]} but the training images "
                        f"({source}) are {tx.shape[1]}x{tx.shape[2]} (height x width)")
    if sx.dtype != tx.dtype:  # one dtype for both, so normalisation treats them alike
        tx, sx = tx.astype(np.float32), sx.astype(np.float32)
    ty, sy, classes = encode_labels(ty, sy, source, test_source)
    return Dataset(tx, ty, sx, sy, classes, source, test_source, digest)
