"""Issue 10: data sets too small to split stratified get one clear line naming the flag or file, never a traceback.

The rule (data.splits.check_split): every class must get at least 2 images in training and 2 in
validation, for every seed, and the same counts for what a --subset keeps.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from data.__main__ import check_writable_dir
from data.csv import write_csv
from common.errors import DataError, InputError
from data.idx import write_idx
from data.dataset import make_dataset
from data.source import DataConfig, load_splits
from data.splits import (
    check_split, fewest_per_class, make_splits, per_class_minimum, smallest_subset, split_sizes,
    split_train_val, stratified_subset,
)
from tests.conftest import call_cli, tree

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_MINIMUM = "use --subset >= 111"


def labels_of(per_class: list[int]) -> np.ndarray:
    """Labels 0, 1, ... with per_class[k] images of class k."""
    return np.repeat(np.arange(len(per_class)), per_class)


def dataset(tx: np.ndarray, ty: np.ndarray, sx: np.ndarray, sy: np.ndarray):
    """Arrays as the data layer reads them from train.csv (its labels encoded, no held-out test)."""
    return make_dataset((tx, ty), (sx, sy), "train.csv", "test.csv", test_fraction=0.2)


def write_source(folder: Path, train_labels: np.ndarray) -> tuple[Path, Path]:
    """Blank 28x28 images with the given labels as train.csv, plus a 10-image test.csv of the same classes."""
    train, test = folder / "train.csv", folder / "test.csv"
    labels = np.asarray(train_labels)
    write_csv(train, np.zeros((len(labels), 28, 28), np.uint8), labels)
    classes = np.unique(labels)
    write_csv(test, np.zeros((10, 28, 28), np.uint8), classes[np.arange(10) % len(classes)])
    return train, test


def run_data(tmp_path: Path, *args: str, results: Path | None = None):
    """`python -m data` with results under tmp_path; returns the result and whether tmp_path changed."""
    results = results or tmp_path / "results"
    before = tree(tmp_path)
    r = call_cli("data", "--results-dir", str(results), *args)
    return r, tree(tmp_path) != before


def assert_one_error(r, message: str) -> None:
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"error: {message}\n"


# ---- the arithmetic, exactly as scikit-learn rounds ---------------------------------------------


def test_split_sizes_round_validation_up():
    # Rule: validation gets ceil(n * val_fraction) images and training the rest, as scikit-learn does.
    assert split_sizes(25, 0.2) == (20, 5)
    assert split_sizes(111, 0.2) == (88, 23)
    assert split_sizes(13, 0.25) == (9, 4)
    assert split_sizes(7, 0.0) == (7, 0)


def test_fewest_per_class_for_subset_25():
    # Rule: --subset 25 of MNIST keeps at least 2 of each class; 2 * 20/25 = 1.6 puts 1 or 2 in training,
    # so a class can be left with 0 validation images.
    train, val = fewest_per_class(np.array(TRAIN_COUNTS), 25, 0.2)
    assert train.tolist() == [[1] * 10]
    assert val.tolist() == [[0] * 10]


def test_smallest_subset_of_mnist():
    # Rule: the suggested --subset is the smallest from which every larger one works: class 5
    # (5421 of 60000) keeps floor(5421/60000 * 111) = 10 images, and 10 is what 80/20 needs.
    assert smallest_subset(np.array(TRAIN_COUNTS), 0.2) == 111
    assert smallest_subset(np.array(TRAIN_COUNTS), 0.25) == 89
    assert smallest_subset(np.array(TRAIN_COUNTS), 0.0) == 23


def test_per_class_minimum_by_val_fraction():
    # Rule: a class needs 10 images for 80/20 (8 + 2), 20 for 90/10, 2 with no validation part.
    assert per_class_minimum(100, 0.2) == 10
    assert per_class_minimum(100, 0.1) == 20
    assert per_class_minimum(100, 0.0) == 2


def test_ten_per_class_is_exactly_enough():
    # Rule: 10 images of each class split 80/20 into exactly 8 + 2 per class; 9 of one class is refused.
    labels = labels_of([10] * 10)
    s = make_splits(dataset(np.zeros((100, 28, 28), np.uint8), labels, np.zeros((1, 28, 28), np.uint8), labels[:1]))
    assert np.bincount(s.train_y.numpy()).tolist() == [8] * 10
    assert np.bincount(s.val_y.numpy()).tolist() == [2] * 10
    with pytest.raises(DataError) as info:
        check_split(labels_of([10] * 7 + [9] + [10] * 2), 0.2, source="train.csv")
    assert str(info.value) == "train.csv: class 7 has 9 images; a stratified 80/20 split needs at least 10 per class"


def test_guarantee_holds_for_every_seed(mnist_arrays):
    # Rule: any --subset the check lets through really gives every class 2+ images in each part.
    labels = mnist_arrays[1].astype(np.int64)
    blank = np.zeros((len(labels), 1), np.uint8)
    for n in range(111, 261, 3):
        check_split(labels, 0.2, n)
        for seed in range(3):
            keep = stratified_subset(labels, n, seed)
            _, train_y, _, val_y = split_train_val(blank[keep], labels[keep], 0.2, seed)
            assert np.bincount(train_y, minlength=10).min() >= 2
            assert np.bincount(val_y, minlength=10).min() >= 2


# ---- --subset --------------------------------------------------------------------------------


def test_subset_10_names_class_and_working_minimum(tmp_path):
    # Rule: `--subset 10` (the old stated minimum) is one line naming the flag, a short class and a working size.
    r, changed = run_data(tmp_path, "--subset", "10")
    assert_one_error(r, f"--subset 10: class 0 can get as few as 0 validation images (2 per class needed); {MNIST_MINIMUM}")
    assert not changed


def test_subset_25_names_class_and_working_minimum(tmp_path):
    # Rule: `--subset 25` is refused the same way, before anything is written.
    r, changed = run_data(tmp_path, "--subset", "25")
    assert_one_error(r, f"--subset 25: class 0 can get as few as 0 validation images (2 per class needed); {MNIST_MINIMUM}")
    assert not changed


def test_suggested_subset_really_works(mnist_arrays):
    # Rule: the suggested --subset 111 splits 88/23 with every class 2+ in each part, for several seeds;
    # 110 is refused.
    tx, ty, sx, sy = mnist_arrays
    ty = ty.astype(np.int64)
    for seed in range(4):
        s = make_splits(dataset(tx, ty, sx[:10], sy[:10]), subset=111, seed=seed)
        assert s.sizes() == {"train": 88, "val": 23, "test": 10}
        assert np.bincount(s.train_y.numpy(), minlength=10).min() >= 2
        assert np.bincount(s.val_y.numpy(), minlength=10).min() >= 2
    with pytest.raises(DataError, match=r"^--subset 110: .*; use --subset >= 111$"):
        make_splits(dataset(tx, ty, sx[:10], sy[:10]), subset=110)


def test_subset_larger_than_data_warns_and_uses_all(tmp_path):
    # Rule: --subset above the data's size logs one warning line naming the flag, value and real count,
    # and uses all the images.
    train, test = write_source(tmp_path, labels_of([12] * 10))
    r, _ = run_data(tmp_path, "--train-csv", str(train), "--test-csv", str(test), "--subset", "500")
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"WARNING data.splits: --subset 500 is more than the 120 training images in {train}; using all of them\n"
    assert "train      images (96, 28, 28) torch.uint8" in r.stdout
    assert "validation images (24, 28, 28) torch.uint8" in r.stdout


def test_subset_just_below_data_size_drops_from_largest_classes(tmp_path):
    # Rule: a --subset only a few images short of the data (too few left out for scikit-learn)
    # still works: one image goes from each of the largest classes, ties by label.
    labels = labels_of([12] * 5 + [13] * 5)
    s = make_splits(dataset(np.zeros((125, 28, 28), np.uint8), labels, np.zeros((1, 28, 28), np.uint8), labels[:1]),
                    subset=122)
    assert s.sizes() == {"train": 97, "val": 25, "test": 1}
    kept = np.bincount(np.concatenate([s.train_y.numpy(), s.val_y.numpy()]))
    assert kept.tolist() == [12] * 5 + [12, 12, 12, 13, 13]


def test_small_source_is_blamed_not_the_subset():
    # Rule: when even all the data is too little, the error names the file, whatever --subset says.
    with pytest.raises(DataError) as info:
        check_split(labels_of([1] * 5), 0.2, subset=3, source="train.csv")
    assert str(info.value) == "train.csv: class 0 has 1 image; a stratified 80/20 split needs at least 10 per class"


# ---- sources too small or too uniform --------------------------------------------------------


def test_five_row_csv(tmp_path):
    # Rule: a 5-row CSV is one line naming the file, a short class and the per-class need.
    train, test = write_source(tmp_path, np.arange(5))
    r, changed = run_data(tmp_path, "--train-csv", str(train), "--test-csv", str(test))
    assert_one_error(r, f"{train}: class 0 has 1 image; a stratified 80/20 split needs at least 10 per class")
    assert not changed


def test_csv_with_a_single_row_class(tmp_path):
    # Rule: one class with a single row among plenty is named, with its count and the need.
    train, test = write_source(tmp_path, labels_of([11] * 7 + [1] + [11] * 2))
    r, changed = run_data(tmp_path, "--train-csv", str(train), "--test-csv", str(test))
    assert_one_error(r, f"{train}: class 7 has 1 image; a stratified 80/20 split needs at least 10 per class")
    assert not changed


def test_one_class_csv(tmp_path):
    # Rule: a training CSV holding only one class is refused, naming the file.
    train, test = write_source(tmp_path, np.full(20, 3))
    r, changed = run_data(tmp_path, "--train-csv", str(train), "--test-csv", str(test))
    assert_one_error(r, f"{train}: every training image is class 3; a classifier needs at least 2 classes")
    assert not changed


def test_one_class_idx_folder_names_the_labels_file(tmp_path):
    # Rule: for an IDX --data-dir the error names the training labels file in it.
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((20, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(20, 5, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(3, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_splits(DataConfig(data_dir=str(tmp_path)))
    assert str(info.value) == (f"{tmp_path / 'train-labels-idx1-ubyte.gz'}: every training image is class 5; "
                               "a classifier needs at least 2 classes")


def test_no_validation_part_needs_two_per_class(tmp_path):
    # Rule: val_fraction 0 (the retrain path) keeps working with 2 per class and no validation part;
    # 1 image of a class is still refused.
    train, test = write_source(tmp_path, labels_of([2] * 10))
    s = load_splits(DataConfig(train_csv=str(train), test_csv=str(test), val_fraction=0.0))
    assert s.sizes() == {"train": 20, "val": 0, "test": 10}
    with pytest.raises(DataError) as info:
        check_split(labels_of([2] * 4 + [1]), 0.0, source="train.csv")
    assert str(info.value) == "train.csv: class 4 has 1 image; training without a validation split needs at least 2 per class"


# ---- --results-dir: checked before any data is loaded ----------------------------------------


def test_results_dir_that_is_a_file(tmp_path):
    # Rule: `python -m data --results-dir FILE` is one line naming the flag and value; nothing is written.
    target = tmp_path / "results"
    target.write_text("not a folder\n")
    r, changed = run_data(tmp_path, "--subset", "200", results=target)
    assert_one_error(r, f"--results-dir {target}: is a file, not a folder")
    assert not changed and target.read_text() == "not a folder\n"


def test_results_dir_under_a_file(tmp_path):
    # Rule: a --results-dir below a regular file names that file; nothing is written.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    r, changed = run_data(tmp_path, "--subset", "200", results=blocker / "results")
    assert_one_error(r, f"--results-dir {blocker / 'results'}: {blocker} is a file, not a folder")
    assert not changed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_read_only_results_dir(tmp_path):
    # Rule: a --results-dir inside a read-only folder is one line naming the flag and the folder.
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        r, changed = run_data(tmp_path, "--subset", "200", results=locked / "results")
    finally:
        locked.chmod(0o755)
    assert_one_error(r, f"--results-dir {locked / 'results'}: {locked} is not writable")
    assert not changed


def test_read_only_results_dir_message(tmp_path, monkeypatch):
    # Rule: the first existing ancestor without write permission is named (os.access faked, so this
    # runs as root too).
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(InputError) as info:
        check_writable_dir(tmp_path / "a" / "data", "--results-dir", str(tmp_path / "a"))
    assert str(info.value) == f"--results-dir {tmp_path / 'a'}: {tmp_path} is not writable"


def test_results_dir_output_that_is_a_folder(tmp_path):
    # Rule: an output picture path taken by a folder is refused before any work.
    (tmp_path / "data" / "classes.png").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        check_writable_dir(tmp_path / "data", "--results-dir", str(tmp_path), ("samples.png", "classes.png"))
    assert str(info.value) == f"--results-dir {tmp_path}: {tmp_path / 'data' / 'classes.png'} is a folder, expected a file"


def test_warning_is_logged_not_printed(tmp_path, caplog):
    # Rule: library code reports an oversized --subset through logging, once, at WARNING.
    train, test = write_source(tmp_path, labels_of([10] * 10))
    with caplog.at_level(logging.WARNING):
        s = load_splits(DataConfig(train_csv=str(train), test_csv=str(test), subset=101))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"--subset 101 is more than the 100 training images in {train}; using all of them")]
    assert s.sizes() == {"train": 80, "val": 20, "test": 10}
