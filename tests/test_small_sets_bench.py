"""benchmarks/small_sets.py (issue 29): its two generated sets, and one quick end-to-end run."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import small_sets as bench
from data.csv import read_csv
from data.images import read_image_folder
from data.source import load_splits


def test_glyph_folder_is_a_small_many_class_set(tmp_path: Path) -> None:
    images, labels = bench.glyph_arrays()
    root = bench.write_image_folder(tmp_path / "glyphs", images, labels)
    classes = sorted(p.name for p in root.iterdir())
    counts = [len(list((root / c).glob("*.png"))) for c in classes]
    assert len(classes) >= 20 and max(counts) <= 100 and min(counts) >= 1
    read = read_image_folder(root, cache=False)  # the project's own reader: every PNG decodes
    assert read.classes == classes and read.images.shape == (len(labels), 32, 32)
    assert np.array_equal(read.images, images)  # lossless, in the order written
    assert [read.classes[k] for k in read.labels] == list(labels)


def test_glyphs_are_reproducible() -> None:
    a, la = bench.glyph_arrays(per_class=5, seed=3)
    b, lb = bench.glyph_arrays(per_class=5, seed=3)
    c, _ = bench.glyph_arrays(per_class=5, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert a.std() > 0  # drawn, not blank


def test_digits_csv(tmp_path: Path) -> None:
    path = bench.write_digits_csv(tmp_path / "digits.csv")
    frame = pd.read_csv(path)
    assert len(frame) == 1797 and "label" in frame.columns and frame.shape[1] == 65
    assert sorted(frame["label"].unique()) == list(range(10))
    images, labels = read_csv(path, image_shape=(8, 8))
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    assert np.array_equal(labels, frame["label"].to_numpy())


def test_logreg_uses_the_projects_split(tmp_path: Path) -> None:
    """val_fraction 0 gives the same test images and, as training images, the default split's train + validation."""
    path = bench.write_digits_csv(tmp_path / "digits.csv")
    cfg = bench.data_config(["--train-csv", str(path), "--image-shape", "8x8", "--test-fraction", "0.2"])
    split, pooled = load_splits(cfg), load_splits(dataclasses.replace(cfg, val_fraction=0.0))
    assert np.array_equal(split.test_x.numpy(), pooled.test_x.numpy())
    assert np.array_equal(split.test_y.numpy(), pooled.test_y.numpy())

    def rows(x: np.ndarray, y: np.ndarray) -> list[bytes]:
        """Each (pixels, label) row as bytes, sorted: the images as a multiset, order aside."""
        table = np.concatenate([x.reshape(len(x), -1).astype(np.int64), y[:, None].astype(np.int64)], axis=1)
        return sorted(r.tobytes() for r in table)

    both = rows(np.concatenate([split.train_x.numpy(), split.val_x.numpy()]),
                np.concatenate([split.train_y.numpy(), split.val_y.numpy()]))
    assert both == rows(pooled.train_x.numpy(), pooled.train_y.numpy())


@pytest.mark.slow
def test_quick_run_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "out" / "table.json"
    code = bench.main(["--quick", "--sets", "digits", "--methods", "logreg,train", "--work", str(tmp_path / "work"),
                       "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {r["method"]: r for r in report["results"]}
    assert set(rows) == {"logreg", "train"}
    for r in rows.values():
        assert r["set"] == "digits" and 0 < r["test_accuracy"] <= 1 and r["wall_s"] > 0
    assert rows["train"]["source"].endswith("metrics.json")
    assert report["sets"]["digits"]["test"] == 360  # ceil(0.2 * 1797), held out by the project
    assert "| digits | logreg |" in out.with_suffix(".md").read_text()
