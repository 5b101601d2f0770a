"""A user's own image sets: IDX of another size, CSV with string labels, a PNG tree of 24 classes.

The fast tier reads each set through `python -m data` and the data layer; the slow tier runs every
other command on them (model.train, tuning.grid, tuning.optuna, tuning.report).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.source import DataConfig, load_dataset, load_splits
from tests.conftest import call_cli, one_error, run_cli, write_space
from tests.own_data import (CSV_CLASSES, CSV_SHAPE, IDX_LABELS, IDX_SHAPE, PNG_CLASSES, PNG_SHAPE, write_csv_set,
                            write_idx_set, write_png_tree)

# (flags, class names, image shape, test images) of each kind of set, built under one folder per session
SETS = {
    "mnist": ([], [str(d) for d in range(10)], (28, 28), 10_000),
    "idx": (["--data-dir", "{root}/idx"], [str(v) for v in IDX_LABELS], IDX_SHAPE, 40),
    "csv": (["--train-csv", "{root}/csv/train.csv", "--test-csv", "{root}/csv/test.csv", "--label-column", "kind"],
            sorted(CSV_CLASSES), CSV_SHAPE, 50),
    "png": (["--image-dir", "{root}/png"], PNG_CLASSES, PNG_SHAPE, 72),  # 24 x 15 images, 20 % held out
}


@pytest.fixture(scope="session")
def own_sets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    write_idx_set(root / "idx")
    write_csv_set(root / "csv")
    write_png_tree(root / "png")
    return root


def flags(kind: str, root: Path) -> list[str]:
    return [f.format(root=root) for f in SETS[kind][0]]


def config(kind: str, root: Path, **kw) -> DataConfig:
    """The DataConfig the flags of `kind` make."""
    names = {"--data-dir": "data_dir", "--train-csv": "train_csv", "--test-csv": "test_csv",
             "--image-dir": "image_dir", "--label-column": "label_column"}
    f = flags(kind, root)
    return DataConfig(**{names[a]: v for a, v in zip(f[::2], f[1::2])}, **kw)


# Rule: every kind of set reads with its own class names (in sorted order) and image shape.
@pytest.mark.parametrize("kind", SETS)
def test_classes_and_shape(own_sets, kind):
    _, classes, shape, n_test = SETS[kind]
    data = load_dataset(config(kind, own_sets))
    assert data.classes == classes and data.image_shape == shape and len(data.test_y) == n_test
    assert sorted(set(data.train_y.tolist())) == list(range(len(classes)))


# Rule: IDX labels 3/7/11/42 become 0..3 in that order; the values are the names.
def test_idx_labels_are_remapped(own_sets):
    data = load_dataset(config("idx", own_sets))
    assert data.train_y[:4].tolist() == [0, 1, 2, 3] and data.classes == ["3", "7", "11", "42"]


# Rule: float pixels stay float32 and their mean/std are the data's own (no 0-255 assumed).
def test_float_pixels_normalise_with_their_own_mean(own_sets):
    s = load_splits(config("csv", own_sets))
    assert s.train_x.dtype == torch.float32
    x = s.train_x.double()
    assert s.mean == pytest.approx(float(x.mean()), rel=1e-5) and s.std == pytest.approx(float(x.std()), rel=1e-4)


# Rule: `python -m data` prints the shape, the class names and a count per class and split.
@pytest.mark.parametrize("kind", ["idx", "csv", "png"])
def test_data_cli_prints_shape_classes_counts(own_sets, tmp_path, kind):
    _, classes, (h, w), n_test = SETS[kind]
    r = call_cli("data", *flags(kind, own_sets), "--results-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"images {h}x{w} (height x width), {len(classes)} classes" in r.stdout
    lines = r.stdout.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("class "))) + 1:][:len(classes)]
    assert [line[:len(c) + 1] for line, c in zip(table, classes)] == [f"{c} " for c in classes]
    assert sum(int(line.split()[-1]) for line in table) == n_test
    assert (tmp_path / "data" / "samples.png").stat().st_size > 0


# Rule: an image folder without train/test holds out a stratified test set, and says so.
def test_held_out_test_set_is_logged(own_sets, tmp_path):
    r = call_cli("data", *flags("png", own_sets), "--results-dir", str(tmp_path))
    assert f"{own_sets / 'png'} has no test set: held out 72 of its 360 images" in r.stderr
    counts = [line.split()[-1] for line in r.stdout.splitlines() if line[:2] in ("A ", "X ")]
    assert counts == ["3", "3"]


# Rule: an IDX folder without the t10k files and a lone --train-csv each get a held-out test set.
def test_sources_without_a_test_set(own_sets, tmp_path):
    import shutil

    idx = tmp_path / "idx"
    shutil.copytree(own_sets / "idx", idx)
    for f in idx.glob("t10k-*"):
        f.unlink()
    data = load_dataset(DataConfig(data_dir=str(idx), test_fraction=0.25))
    assert (len(data.train_y), len(data.test_y)) == (150, 50) and sorted(np.bincount(data.test_y).tolist()) == [12, 12, 13, 13]  # stratified
    data = load_dataset(DataConfig(train_csv=str(own_sets / "csv" / "train.csv"), label_column="kind"))
    assert (len(data.train_y), len(data.test_y)) == (160, 40) and data.test_source.startswith("held out of ")


# ---- bad input: one line, exit 2, naming the file ---------------------------------------------------


def _png(path: Path, size: tuple[int, int] = (8, 8)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 128).save(path)


def _csv(path: Path, header: str, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _idx(folder: Path, labels: list[int], test_labels: list[int]) -> Path:
    from data.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((len(labels), 4, 4), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.asarray(labels, np.int32))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((len(test_labels), 4, 4), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.asarray(test_labels, np.int32))
    return folder


def _no_images(d: Path) -> tuple[list[str], str]:
    (d / "a").mkdir(parents=True)
    return ["--image-dir", str(d)], f"{d}: no images"


def _one_image_class(d: Path) -> tuple[list[str], str]:
    for k in range(5):
        _png(d / "many" / f"{k}.png")
    _png(d / "lonely" / "0.png")
    return ["--image-dir", str(d)], f"{d}: class lonely has 1 image(s)"


def _not_an_image(d: Path) -> tuple[list[str], str]:
    _png(d / "a" / "0.png")
    (d / "a" / "notes.txt").write_text("hello")
    return ["--image-dir", str(d)], f"{d / 'a' / 'notes.txt'}: not an image file"


def _fake_png(d: Path) -> tuple[list[str], str]:
    _png(d / "a" / "0.png")
    (d / "a" / "1.png").write_bytes(b"not a png at all")
    return ["--image-dir", str(d)], f"{d / 'a' / '1.png'}: not a readable image"


def _mixed_sizes(d: Path) -> tuple[list[str], str]:
    _png(d / "a" / "0.png", (8, 8))
    _png(d / "b" / "0.png", (10, 6))
    return ["--image-dir", str(d)], f"{d / 'a' / '0.png'} is 8x8 but {d / 'b' / '0.png'} is 6x10 (height x width)"


def _test_folder_of_another_size(d: Path) -> tuple[list[str], str]:
    for c in "ab":
        _png(d / "train" / c / "0.png", (8, 8))
        _png(d / "test" / c / "0.png", (10, 6))
    return ["--image-dir", str(d)], (f"{d / 'test'}: test images are 6x10 but the training images ({d / 'train'}) "
                                     "are 8x8 (height x width)")


def _not_square(d: Path) -> tuple[list[str], str]:
    p = _csv(d / "t.csv", "label," + ",".join(f"p{k}" for k in range(6)), "a,1,2,3,4,5,6", "b,1,2,3,4,5,6")
    return ["--train-csv", str(p)], f"{p}: 6 pixel columns are not a square image; give --image-shape HxW"


def _nan_pixel(d: Path) -> tuple[list[str], str]:
    p = _csv(d / "t.csv", "label,p0,p1,p2,p3", "a,1,2,3,4", "b,1,nan,3,4")
    return ["--train-csv", str(p)], f"{p}: row 2 (line 3), column 'p1': not a finite number"


def _empty_pixel(d: Path) -> tuple[list[str], str]:
    p = _csv(d / "t.csv", "label,p0,p1,p2,p3", "a,1,2,3,4", "b,1,2,,4")
    return ["--train-csv", str(p)], f"{p}: row 2 (line 3), column 'p2': empty cell"


def _unknown_test_class(d: Path) -> tuple[list[str], str]:
    header = "label,p0,p1,p2,p3"
    train = _csv(d / "train.csv", header, *[f"{c},1,2,3,4" for c in "ab" * 10])
    test = _csv(d / "test.csv", header, "a,1,2,3,4", "zebra,1,2,3,4")
    return (["--train-csv", str(train), "--test-csv", str(test)],
            f"{test}: test label(s) 'zebra' not among the 2 classes of the training data ({train})")


def _single_class(d: Path) -> tuple[list[str], str]:
    for k in range(4):
        _png(d / "only" / f"{k}.png")
    return ["--image-dir", str(d)], f"{d}: every training image is class only; a classifier needs at least 2 classes"


def _negative_idx_label(d: Path) -> tuple[list[str], str]:
    _idx(d, [0, 1, -1, 1], [0, 1])
    return ["--data-dir", str(d)], f"{d / 'train-labels-idx1-ubyte'}: negative label -1"


BAD = [_no_images, _one_image_class, _not_an_image, _fake_png, _mixed_sizes, _test_folder_of_another_size, _not_square, _nan_pixel,
       _empty_pixel, _unknown_test_class, _single_class, _negative_idx_label]


# Rule: each bad input of a user's own set is one line, exit 2, naming the file (and what is wrong).
@pytest.mark.parametrize("make", BAD, ids=[f.__name__.strip("_") for f in BAD])
def test_bad_own_data_is_one_line(tmp_path, make):
    args, message = make(tmp_path / "in")
    r = call_cli("data", *args, "--results-dir", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert one_error(r).startswith(message)
    assert not (tmp_path / "out" / "data" / "samples.png").exists()


# ---- every command on every kind of set (slow: real training, real Ray) ----------------------------


# Rule: model.train on each set records the classes and shape, a K x K confusion matrix, and learns.
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["idx", "csv", "png"])
def test_model_train_on_own_data(own_sets, tmp_path, kind):
    _, classes, shape, _ = SETS[kind]
    cli = run_cli if kind == "png" else call_cli  # one through a real interpreter is enough
    r = cli("model.train", *flags(kind, own_sets), "--epochs", "4", "--batch-size", "16", "--lr", "0.05",
                "--augment-shift", "1", "--hidden-sizes", "64", "--name", "r", "--results-dir", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())
    k = len(classes)
    assert m["classes"] == classes and m["image_shape"] == list(shape)
    assert np.asarray(m["confusion_matrix"]).shape == (k, k) and len(m["per_class_accuracy"]) == k
    assert m["test_accuracy"] > 2 / k  # twice chance: it learnt the classes, not just ran
    assert all((tmp_path / "runs" / "r" / f).stat().st_size > 0 for f in ("confusion.png", "predictions.png"))


@pytest.fixture(scope="module")
def searched(ray_session, own_sets, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """On each of the three own sets a one-point grid with its retrain; on the CSV set (string labels)
    a two-trial Optuna search too (its data path is the grid's; its retrain is the grid's code)."""
    from tuning.grid import main as grid_main
    from tuning.optuna import main as optuna_main

    tmp = tmp_path_factory.mktemp("own-searches")
    space = write_space(tmp / "space.yaml", {"lr": {"values": [0.1], "distribution": "loguniform", "low": 0.01, "high": 0.2}},
                        epochs=2, batch_size=16)
    out = {}
    for kind in ("idx", "csv", "png"):
        common = [*flags(kind, own_sets), "--space", str(space), "--results-dir", str(tmp), "--cpus-per-trial", "1"]
        assert grid_main([*common, "--name", f"g-{kind}"]) == 0
        out[("grid", kind)] = tmp / f"g-{kind}"
    common = [*flags("csv", own_sets), "--space", str(space), "--results-dir", str(tmp), "--cpus-per-trial", "1"]
    assert optuna_main([*common, "--name", "o-csv", "--trials", "2", "--no-retrain"]) == 0
    out[("optuna", "csv")] = tmp / "o-csv"
    return out


# Rule: a search on each set retrains and tests with the set's classes, shape and test set.
@pytest.mark.parametrize("kind", ["idx", "csv", "png"])
def test_search_reports_classes_and_shape(searched, kind):
    _, classes, shape, n_test = SETS[kind]
    report = json.loads((searched[("grid", kind)] / "test_report.json").read_text())
    assert report["classes"] == classes and report["image_shape"] == list(shape)
    assert report["test_images"] == n_test
    assert np.asarray(report["confusion_matrix"]).shape == (len(classes), len(classes))


# Rule: an Optuna search on an own set (string labels) finishes both trials and picks a best one.
def test_optuna_runs_on_own_data(searched):
    import pandas as pd

    from tuning.results.tables import COMPLETED

    trials = pd.read_csv(searched[("optuna", "csv")] / "trials.csv")
    assert trials["status"].tolist() == [COMPLETED, COMPLETED]
    assert json.loads((searched[("optuna", "csv")] / "best.json").read_text())["trial_id"] in set(trials["trial_id"])


# Rule: the tuned model of an image-folder set predicts that set's own files (--as-is) by class name,
# and exports to ONNX checked on the set's held-out test images.
def test_predict_and_export_an_own_data_model(searched, own_sets, tmp_path):
    folder = searched[("grid", "png")]
    classes = SETS["png"][1]
    r = call_cli("model.predict", str(folder), str(own_sets / "png" / classes[0]), "--as-is", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows and all(row["prediction"] in classes for row in rows)
    pytest.importorskip("onnxruntime")
    r = call_cli("model.export", str(folder), "--onnx", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    assert f"72 test images (held out of {own_sets / 'png'})" in r.stdout and "0 prediction(s) differ" in r.stdout


# Rule: tuning.report redraws a search on each set, predictions included, from the folder alone.
@pytest.mark.parametrize("kind", ["idx", "csv", "png"])
def test_report_redraws_own_data_search(searched, kind):
    folder = searched[("grid", kind)]
    (folder / "plots" / "predictions.png").unlink()
    r = call_cli("tuning.report", str(folder))
    assert r.returncode == 0, r.stderr
    assert (folder / "plots" / "predictions.png").stat().st_size > 0
    assert (folder / "plots" / "confusion.png").stat().st_size > 0
