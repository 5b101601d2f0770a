"""Small image sets of the kinds users bring, made in the tests (nothing is downloaded).

- an IDX set of another size: 12x10 images, labels 3, 7, 11, 42 (not 0..K-1);
- a CSV with string labels: 8x8 float pixels in [0, 1], the label column named `kind`, in the middle;
- a PNG tree of 24 classes: letters A..X drawn with Pillow at 20x20, class folders directly under
  the root (no train/test, so a test set is held out).

Each class has a pattern a small MLP can learn in a couple of epochs, so tests can assert that
training does better than chance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

IDX_LABELS = [3, 7, 11, 42]
IDX_SHAPE = (12, 10)
CSV_CLASSES = ["Ankle boot", "circle", "seven", "square", "zigzag"]
CSV_SHAPE = (8, 8)
PNG_CLASSES = [chr(ord("A") + k) for k in range(24)]
PNG_SHAPE = (20, 20)


def bars(labels: np.ndarray, shape: tuple[int, int], n_classes: int, seed: int) -> np.ndarray:
    """Float images in [0, 1]: a bright bar whose row and column depend on the class, plus noise."""
    rng = np.random.default_rng(seed)
    h, w = shape
    x = rng.uniform(0, 0.2, (len(labels), h, w))
    for i, k in enumerate(labels):
        x[i, (k * h) // n_classes, :] = 1.0
        x[i, :, (k * w) // n_classes] = 0.8
    return x


def write_idx_set(folder: Path, n_train: int = 200, n_test: int = 40) -> Path:
    """IDX files in MNIST's names: uint8 12x10 images, labels 3/7/11/42."""
    from data.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        codes = np.arange(n) % len(IDX_LABELS)
        images = (bars(codes, IDX_SHAPE, len(IDX_LABELS), seed) * 255).round().astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.asarray(IDX_LABELS, np.uint8)[codes])
    return folder


def write_csv_set(folder: Path, n_train: int = 200, n_test: int = 50) -> tuple[Path, Path]:
    """train.csv and test.csv: float pixels, string labels in a column `kind` at position 10."""
    from data.csv import write_csv

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n, seed in (("train.csv", n_train, 3), ("test.csv", n_test, 4)):
        codes = np.arange(n) % len(CSV_CLASSES)
        images = bars(codes, CSV_SHAPE, len(CSV_CLASSES), seed).astype(np.float32)
        write_csv(folder / name, images, np.asarray(CSV_CLASSES, dtype=object)[codes], label_position=10,
                  label_column="kind")
        paths.append(folder / name)
    return paths[0], paths[1]


def write_png_tree(root: Path, per_class: int = 15, classes: list[str] = PNG_CLASSES) -> Path:
    """root/<letter>/<i>.png: each letter drawn in white on black at a small random offset."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(5)
    font = ImageFont.load_default(size=14)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = Image.new("L", (PNG_SHAPE[1], PNG_SHAPE[0]), 0)
            dx, dy = rng.integers(-2, 3, 2)
            ImageDraw.Draw(im).text((5 + dx, 2 + dy), name, fill=int(rng.integers(180, 256)), font=font)
            im.save(root / name / f"{i:03d}.png")
    return root
