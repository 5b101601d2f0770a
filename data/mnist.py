"""Where the digits come from: the packaged MNIST, any IDX folder, the notebook's CSVs, or mirrors.

`DataConfig` is the one description of a data source shared by every CLI; `load_splits`
turns it into `Splits` (uint8 tensors, seeded stratified 80/20 split, train mean/std).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import DataError
from data.splits import Splits, make_splits

log = logging.getLogger(__name__)

PACKAGED_DIR = Path(__file__).resolve().parent / "raw"  # MNIST shipped with the package (CC BY-SA 3.0)
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@dataclass
class DataConfig:
    """A data source and how to split it. Defaults: the packaged MNIST, 80/20, seed 0."""

    data_dir: str | None = None
    """Folder of IDX files (gz or raw) in MNIST's names; None = the copy shipped with the package."""
    train_csv: str | None = None
    """Training CSV in the notebook's format (a `label` column anywhere plus 784 pixel columns)."""
    test_csv: str | None = None
    """Test CSV in the same format; needed whenever --train-csv is given."""
    download: bool = False
    """Fetch missing IDX files into --data-dir from --mirror URLs, verified by MD5."""
    mirrors: list[str] = field(default_factory=list)
    """Mirror base URLs tried in order by --download; empty = the usual public mirrors."""
    subset: int | None = None
    """Use a stratified subset of N training images (before the split) for quick runs. Every class needs
    2+ images in training and in validation: for MNIST at 80/20 that means N >= 111."""
    val_fraction: float = 0.2
    """Share of the training images held out for validation (the notebook's 20 %)."""
    split_seed: int = 0
    """Seed of the train/validation split (fixed across trials so they compare fairly)."""


def _read_idx_dir(folder: Path, verify: bool) -> tuple[np.ndarray, ...]:
    from data.idx import MNIST_FILES, find_idx, read_idx

    arrays = []
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        md5 = MNIST_FILES[name] if verify else None
        arrays.append(read_idx(find_idx(folder, name), expected_md5=md5))
    return tuple(arrays)


def load_arrays(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw (train_images, train_labels, test_images, test_labels) as uint8/uint8/uint8/int64-able."""
    if cfg.train_csv or cfg.test_csv:
        if not (cfg.train_csv and cfg.test_csv):
            raise DataError("--train-csv and --test-csv must be given together")
        from data.csv import read_csv

        tx, ty = read_csv(cfg.train_csv)
        sx, sy = read_csv(cfg.test_csv)
        arrays = (tx, ty, sx, sy)
    elif cfg.data_dir is None:
        if cfg.download:
            raise DataError("--download needs --data-dir: the folder to download into")
        # The packaged copy is always verified against the published MD5s (cheap: it is decompressed anyway).
        arrays = _read_idx_dir(PACKAGED_DIR, verify=True)
    else:
        folder = Path(cfg.data_dir).expanduser()
        if cfg.download:
            from data.download import DEFAULT_MIRRORS, download_mnist

            download_mnist(folder, cfg.mirrors or DEFAULT_MIRRORS)
        # Any MNIST-format dataset works from a folder, so only downloads are checked against MNIST's MD5s.
        arrays = _read_idx_dir(folder, verify=cfg.download)
    _check_pairs(cfg, arrays)
    return arrays


def _check_pairs(cfg: DataConfig, arrays: tuple[np.ndarray, ...]) -> None:
    src = cfg.train_csv or cfg.data_dir or str(PACKAGED_DIR)
    for (x, y), part in ((arrays[:2], "train"), (arrays[2:], "test")):
        if len(x) != len(y):
            raise DataError(f"{src}: {part} has {len(x)} images but {len(y)} labels")
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{src}: {part} images have shape {tuple(x.shape)}, expected (N, 28, 28)")
        if len(y) and int(y.max()) > 9:
            raise DataError(f"{src}: {part} label {int(y.max())} outside 0-9")


def checksum(arrays: tuple[np.ndarray, ...]) -> str:
    """md5 over the arrays' bytes: identifies the exact data a report was made from."""
    h = hashlib.md5()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def train_source(cfg: DataConfig) -> str:
    """The file the training labels come from, for errors about the data itself (not a flag)."""
    if cfg.train_csv:
        return cfg.train_csv
    from data.idx import find_idx

    folder = PACKAGED_DIR if cfg.data_dir is None else Path(cfg.data_dir).expanduser()
    return str(find_idx(folder, TRAIN_LABELS))


def load_splits(cfg: DataConfig, seed: int | None = None) -> Splits:
    """Read the source named by `cfg` and split it (seed overrides cfg.split_seed).

    Too little data for the split (see data.splits.check_split) is a one-line DataError naming
    --subset or the file; a --subset above the data's size is a warning and uses everything.
    """
    if not 0 <= cfg.val_fraction < 1:
        raise DataError(f"--val-fraction {cfg.val_fraction}: must be in [0, 1)")
    arrays = load_arrays(cfg)
    tx, ty, sx, sy = arrays
    splits = make_splits(
        tx, ty.astype(np.int64), sx, sy.astype(np.int64),
        val_fraction=cfg.val_fraction,
        seed=cfg.split_seed if seed is None else seed,
        subset=cfg.subset,
        checksum=checksum(arrays),
        source=train_source(cfg),
    )
    log.info("data: %s, mean %.4f std %.4f", splits.sizes(), splits.mean, splits.std)
    return splits
