"""The data path from source to Splits: facts of the shared README, split sizes, stratification."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from common.errors import DataError
from data.source import DataConfig, load_splits
from data.dataset import make_dataset
from data.splits import make_splits, normalise

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def full_splits(mnist_arrays):
    tx, ty, sx, sy = mnist_arrays
    return make_splits(make_dataset((tx, ty), (sx, sy), "train", "test", 0.2), seed=0)


def test_packaged_data_matches_published_facts(mnist_arrays):
    # Rule: the packaged copy loads with MNIST's shapes, dtypes and label counts.
    tx, ty, sx, sy = mnist_arrays
    assert tx.shape == (60000, 28, 28) and tx.dtype == np.uint8
    assert sx.shape == (10000, 28, 28) and sx.dtype == np.uint8
    assert np.bincount(ty, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(sy, minlength=10).tolist() == TEST_COUNTS
    scaled = tx.astype(np.float64) / 255
    assert round(scaled.mean(), 4) == 0.1307 and round(scaled.std(), 4) == 0.3081


def test_split_is_80_20_with_exact_dtypes(full_splits):
    # Rule: 60,000 training images split into 48,000 / 12,000; test stays 10,000; uint8 images, int64 labels.
    s = full_splits
    assert s.sizes() == {"train": 48000, "val": 12000, "test": 10000}
    assert s.train_x.shape == (48000, 28, 28) and s.train_x.dtype == torch.uint8
    assert s.val_x.dtype == torch.uint8 and s.test_x.dtype == torch.uint8
    assert s.train_y.dtype == torch.int64 and s.val_y.dtype == torch.int64 and s.test_y.dtype == torch.int64


def test_split_is_stratified(full_splits):
    # Rule: every class keeps its share in validation (within one image of 20 %).
    val = np.bincount(full_splits.val_y.numpy(), minlength=10)
    assert np.all(np.abs(val - np.array(TRAIN_COUNTS) * 0.2) <= 1)


def test_split_is_seeded(mnist_arrays):
    # Rule: the same seed gives the same split; another seed a different one.
    tx, ty, sx, sy = (a[:3000] for a in mnist_arrays)
    a, b, c = (make_splits(make_dataset((tx, ty), (sx, sy), "train", "test", 0.2), seed=s) for s in (1, 1, 2))
    assert torch.equal(a.val_y, b.val_y) and torch.equal(a.val_x, b.val_x)
    assert not torch.equal(a.val_x, c.val_x)


def test_normalisation_uses_training_split(full_splits):
    # Rule: mean/std come from the training split, and normalised training data is ~N(0, 1).
    s = full_splits
    assert abs(s.mean / 255 - 0.1307) < 2e-3 and abs(s.std / 255 - 0.3081) < 2e-3  # pixel units
    x = normalise(s.train_x, s.mean, s.std)
    assert x.shape == (48000, 784) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3


def test_subset_is_stratified_and_sized():
    # Rule: --subset N keeps N training images before the 80/20 split, each class represented.
    s = load_splits(DataConfig(subset=1000))
    assert s.sizes() == {"train": 800, "val": 200, "test": 10000}
    assert (np.bincount(s.train_y.numpy(), minlength=10) > 50).all()


@pytest.mark.parametrize("cfg, needle", [
    (DataConfig(subset=3), "--subset 3"),
    (DataConfig(val_fraction=1.5), "--val-fraction 1.5"),
    (DataConfig(download=True), "--download needs --data-dir"),
    (DataConfig(test_csv="x.csv"), "--test-csv x.csv: needs --train-csv"),
    (DataConfig(image_dir="d", data_dir="e"), "--data-dir and --image-dir: give one data source"),
    (DataConfig(image_shape="16by16"), "--image-shape 16by16"),
])
def test_bad_data_config_is_one_clear_error(cfg, needle):
    # Rule: a bad data flag raises DataError naming the flag.
    with pytest.raises(DataError, match=needle):
        load_splits(cfg)


def test_mismatched_image_and_label_counts(tmp_path, mnist_arrays):
    # Rule: an IDX folder whose image and label counts differ is refused, naming the folder.
    from data.idx import write_idx

    tx, ty, sx, sy = mnist_arrays
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", tx[:100])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ty[:90])
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", sx[:50])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", sy[:50])
    with pytest.raises(DataError, match=r"100 images but 90 labels"):
        load_splits(DataConfig(data_dir=str(tmp_path)))


def test_any_idx_folder_works(tmp_path, mnist_arrays):
    # Rule: a folder of raw (uncompressed) IDX files in MNIST's names loads like the packaged copy.
    from data.idx import write_idx

    tx, ty, sx, sy = mnist_arrays
    for name, arr in (("train-images-idx3-ubyte", tx[:500]), ("train-labels-idx1-ubyte", ty[:500]),
                      ("t10k-images-idx3-ubyte", sx[:100]), ("t10k-labels-idx1-ubyte", sy[:100])):
        write_idx(tmp_path / name, arr)
    s = load_splits(DataConfig(data_dir=str(tmp_path)))
    assert s.sizes() == {"train": 400, "val": 100, "test": 100}
