"""Where the images come from: the packaged MNIST, an IDX folder, CSVs, a folder of image files, or mirrors.

`DataConfig` is the one description of a data source shared by every CLI; `load_dataset` reads it
into a `data.dataset.Dataset` (class names, image shape, a test set) and `load_splits` turns that
into `Splits` (seeded stratified train/validation split, train mean/std).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import DataError
from data.csv import LABEL
from data.dataset import Dataset, make_dataset
from data.splits import Splits, make_splits

log = logging.getLogger(__name__)

PACKAGED_DIR = Path(__file__).resolve().parent / "raw"  # MNIST shipped with the package (CC BY-SA 3.0)
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@dataclass
class DataConfig:
    """A data source and how to split it. Defaults: the packaged MNIST, 80/20, seed 0."""

    data_dir: str | None = None
    """Folder of IDX files (gz or raw) in MNIST's names, images of any HxW, labels any integers >= 0;
    None = the MNIST copy shipped with the package. Without the t10k files a test set is held out."""
    train_csv: str | None = None
    """Training CSV: a label column anywhere (see --label-column), every other column one pixel."""
    test_csv: str | None = None
    """Test CSV in the same format; without it a test set is held out of --train-csv."""
    image_dir: str | None = None
    """Folder of images, one subfolder per class (DIR/<class>/*.png), or DIR/train/<class> and
    DIR/test/<class>; PNG, JPEG, BMP or GIF, read as greyscale."""
    label_column: str = LABEL
    """Name of the CSV label column; its values may be integers or text ("seven", "Ankle boot")."""
    image_shape: str | None = None
    """HxW, e.g. 16x16: the shape of CSV rows whose pixel count is not a square, or the size every
    --image-dir image is resized to; None = the data's own."""
    download: bool = False
    """Fetch missing IDX files into --data-dir from --mirror URLs, verified by MD5."""
    mirrors: list[str] = field(default_factory=list)
    """Mirror base URLs tried in order by --download; empty = the usual public mirrors."""
    subset: int | None = None
    """Use a stratified subset of N training images (before the split) for quick runs. Every class needs
    2+ images in training and in validation: for MNIST at 80/20 that means N >= 111."""
    val_fraction: float = 0.2
    """Share of the training images held out for validation (the notebook's 20 %)."""
    test_fraction: float = 0.2
    """Share of the images held out as the test set when the source has none (seeded, stratified)."""
    split_seed: int = 0
    """Seed of the train/validation split (fixed across trials so they compare fairly)."""

    def inputs(self) -> tuple[list[Path], list[Path]]:
        """(every file or folder this source reads, the folders of them read whole). A command's
        output folders keep clear of both: an image folder's every file is read as data, and an
        output folder is written into (and --overwrite empties it)."""
        given = [Path(v).expanduser() for v in (self.data_dir, self.train_csv, self.test_csv, self.image_dir) if v]
        return given, [Path(self.image_dir).expanduser()] if self.image_dir else []

    def shape(self) -> tuple[int, int] | None:
        """--image-shape as (height, width), checked."""
        from data.images import parse_shape

        return None if self.image_shape is None else parse_shape(self.image_shape)


def _read_idx_dir(folder: Path, verify: bool, shape: tuple[int, int] | None
                  ) -> tuple[tuple, tuple | None, str, str | None]:
    """((train images, labels), test or None when the folder has no t10k files, train source, test source)."""
    from data.idx import MNIST_FILES, find_idx, read_idx

    test_files = [has_idx(folder, n) for n in (TEST_IMAGES, TEST_LABELS)]
    if any(test_files) and not all(test_files):
        find_idx(folder, TEST_LABELS if test_files[0] else TEST_IMAGES)  # names the missing one
    names = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)[: 4 if all(test_files) else 2]
    arrays, paths = [], []
    for name in names:
        path = find_idx(folder, name)
        a = read_idx(path, expected_md5=MNIST_FILES[name] if verify else None)
        if name.endswith("labels-idx1-ubyte"):
            if a.ndim != 1:
                raise DataError(f"{path}: labels have shape {a.shape}, expected (N,)")
            if not np.issubdtype(a.dtype, np.integer):
                raise DataError(f"{path}: labels are {a.dtype}, expected integers")
            if len(a) and a.min() < 0:
                raise DataError(f"{path}: negative label {int(a.min())}; IDX labels must be integers >= 0")
        elif shape is not None and a.shape[1:] != shape:
            raise DataError(f"--image-shape {shape[0]}x{shape[1]}: the images in {path} are {a.shape[1]}x{a.shape[2]}; "
                            "--image-shape can only resize --image-dir images")
        arrays.append(a)
        paths.append(str(path))
    if len(arrays) == 2:
        return (arrays[0], arrays[1]), None, paths[1], None
    return (arrays[0], arrays[1]), (arrays[2], arrays[3]), paths[1], paths[3]


def has_idx(folder: Path, name: str) -> bool:
    return (folder / name).is_file() or (folder / f"{name}.gz").is_file()


def _read_image_dir(root: Path, shape: tuple[int, int] | None) -> tuple[tuple, tuple | None, str, str | None]:
    """((train images, class-name labels), test or None, train source, test source) of an image folder."""
    from data.images import has_split_folders, read_image_folder

    def named(s) -> tuple[np.ndarray, np.ndarray]:
        return s.images, np.asarray(s.classes, dtype=str)[s.labels]

    if has_split_folders(root):
        train, test = read_image_folder(root / "train", shape), read_image_folder(root / "test", shape)
        return named(train), named(test), str(root / "train"), str(root / "test")
    return named(read_image_folder(root, shape)), None, str(root), None


def load_dataset(cfg: DataConfig) -> Dataset:
    """Read the source `cfg` names: images, labels as 0..K-1, class names, a test set (held out if none)."""
    shape = cfg.shape()
    sources = [f for f, v in (("--data-dir", cfg.data_dir), ("--train-csv", cfg.train_csv or cfg.test_csv),
                              ("--image-dir", cfg.image_dir)) if v]
    if len(sources) > 1:
        raise DataError(f"{' and '.join(sources)}: give one data source, not {len(sources)}")
    if cfg.download and not cfg.data_dir:
        raise DataError("--download needs --data-dir: the folder to download into")
    test_source = None
    if cfg.test_csv and not cfg.train_csv:
        raise DataError(f"--test-csv {cfg.test_csv}: needs --train-csv as well")
    if cfg.train_csv:
        from data.csv import read_csv

        source, test_source = cfg.train_csv, cfg.test_csv
        train = read_csv(cfg.train_csv, cfg.label_column, shape)
        test = read_csv(cfg.test_csv, cfg.label_column, shape) if cfg.test_csv else None
    elif cfg.image_dir:
        train, test, source, test_source = _read_image_dir(Path(cfg.image_dir).expanduser(), shape)
    else:
        folder = PACKAGED_DIR if cfg.data_dir is None else Path(cfg.data_dir).expanduser()
        if cfg.download:
            from data.download import DEFAULT_MIRRORS, download_mnist

            download_mnist(folder, cfg.mirrors or DEFAULT_MIRRORS)
        # The packaged copy is always verified against the published MD5s (cheap: it is decompressed
        # anyway); any IDX set works from a folder, so only downloads are checked against MNIST's.
        train, test, source, test_source = _read_idx_dir(folder, cfg.data_dir is None or cfg.download, shape)
    return make_dataset(train, test, source, test_source, cfg.test_fraction)


def load_splits(cfg: DataConfig, seed: int | None = None) -> Splits:
    """Read the source named by `cfg` and split it (seed overrides cfg.split_seed).

    Too little data for the split (see data.splits.check_split) is a one-line DataError naming
    --subset or the file; a --subset above the data's size is a warning and uses everything.
    """
    if not 0 <= cfg.val_fraction < 1:
        raise DataError(f"--val-fraction {cfg.val_fraction}: must be in [0, 1)")
    data = load_dataset(cfg)
    splits = make_splits(data, val_fraction=cfg.val_fraction, seed=cfg.split_seed if seed is None else seed,
                         subset=cfg.subset)
    log.info("data: %s, %d classes of %dx%d images, mean %.4f std %.4f", splits.sizes(), len(splits.classes),
             *splits.image_shape, splits.mean, splits.std)
    return splits
