"""`python -m model.predict`: image files, folders, CSV and IDX files through the real CLI."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.csv import write_csv
from data.idx import write_idx
from model.card import load
from model.inference import probabilities
from tests.conftest import call_cli, one_error

N = 300  # test digits the round trip uses


@pytest.fixture(scope="module")
def own_predictions(trained_model, mnist_arrays) -> np.ndarray:
    """The model's predictions on the first N original test digits."""
    loaded = load(trained_model)
    return probabilities(loaded.model, loaded.card, mnist_arrays[2][:N].astype(np.float32)).argmax(1)


def predicted(csv_path: Path) -> dict[str, str]:
    with open(csv_path, newline="") as f:
        return {row["file"]: row["prediction"] for row in csv.DictReader(f)}


def test_round_trip_through_other_sizes_inverted_and_off_centre(trained_model, mnist_arrays, own_predictions,
                                                                tmp_path):
    # Rule: PNGs of test digits at another size, dark on light and off-centre are predicted as the
    # model predicts the originals, for at least 95 % of them.
    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    folder.mkdir()
    for i, d in enumerate(mnist_arrays[2][:N]):
        s = int(rng.integers(40, 90))
        big = np.asarray(Image.fromarray(d).resize((s, s), Image.Resampling.BILINEAR))
        page = np.full((120, 140), 255, np.uint8)
        y, x = int(rng.integers(0, 120 - s)), int(rng.integers(0, 140 - s))
        page[y:y + s, x:x + s] = 255 - big
        Image.fromarray(page).save(folder / f"{i:03d}.png")
    r = call_cli("model.predict", str(trained_model), str(folder), "--csv", str(tmp_path / "p.csv"))
    assert r.returncode == 0, r.stderr
    got = predicted(tmp_path / "p.csv")
    agree = np.mean([got[str(folder / f"{i:03d}.png")] == str(own_predictions[i]) for i in range(N)])
    assert agree >= 0.95, agree


def test_csv_rows_are_used_as_they_are(trained_model, mnist_arrays, own_predictions, tmp_path):
    # Rule: CSV rows (with or without a label column) give exactly the model's own predictions.
    images, labels = mnist_arrays[2][:20], mnist_arrays[3][:20]
    write_csv(tmp_path / "with.csv", images, labels)
    r = call_cli("model.predict", str(trained_model), str(tmp_path / "with.csv"), "--csv", str(tmp_path / "a.csv"))
    assert r.returncode == 0, r.stderr
    got = predicted(tmp_path / "a.csv")
    assert [got[f"{tmp_path / 'with.csv'}[{i}]"] for i in range(20)] == [str(p) for p in own_predictions[:20]]
    flat = images.reshape(20, -1)
    (tmp_path / "bare.csv").write_text("\n".join([",".join(f"p{k}" for k in range(784))]
                                                 + [",".join(map(str, row)) for row in flat]) + "\n")
    r = call_cli("model.predict", str(trained_model), str(tmp_path / "bare.csv"), "--csv", str(tmp_path / "b.csv"))
    assert r.returncode == 0, r.stderr
    assert list(predicted(tmp_path / "b.csv").values()) == [str(p) for p in own_predictions[:20]]


def test_an_idx_file_is_read(trained_model, mnist_arrays, own_predictions, tmp_path):
    write_idx(tmp_path / "mine-images-idx3-ubyte", mnist_arrays[2][:10])
    r = call_cli("model.predict", str(trained_model), str(tmp_path / "mine-images-idx3-ubyte"), "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["prediction"] for x in lines] == [str(p) for p in own_predictions[:10]]
    assert all(len(x["top3"]) == 3 and x["top3"][0]["class"] == x["prediction"] for x in lines)
    assert all(x["probability"] == pytest.approx(x["top3"][0]["probability"]) for x in lines)


def test_the_table_and_the_picture(trained_model, mnist_arrays, tmp_path):
    Image.fromarray(255 - mnist_arrays[2][0]).resize((90, 90)).convert("RGB").save(tmp_path / "seven.jpg")
    r = call_cli("model.predict", str(trained_model), str(tmp_path / "seven.jpg"), "--show", str(tmp_path / "s.png"))
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split() == ["file", "prediction", "probability", "top"]
    assert row.split()[:2] == [str(tmp_path / "seven.jpg"), "7"] and len(row.split()) == 6
    assert Image.open(tmp_path / "s.png").size[0] > 100


def test_an_unreadable_file_is_named_and_the_rest_predicted(trained_model, mnist_arrays, tmp_path):
    # Rule: bad files are named on stderr, every good one is still predicted, and the exit code is 1.
    Image.fromarray(mnist_arrays[2][0]).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "notes.txt").write_text("hello")
    write_csv(tmp_path / "wide.csv", np.zeros((2, 5, 5), np.uint8), np.array([1, 2]))
    r = call_cli("model.predict", str(trained_model), str(tmp_path / "good.png"), str(tmp_path / "broken.png"),
                 str(tmp_path / "notes.txt"), str(tmp_path / "wide.csv"), str(tmp_path / "gone.png"))
    assert r.returncode == 1
    assert len(r.stdout.splitlines()) == 2 and str(tmp_path / "good.png") in r.stdout
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split(":")[1].strip() for e in errors] == [str(tmp_path / n) for n in
                                                         ("gone.png", "broken.png", "notes.txt", "wide.csv")]
    assert "images are 5x5 but the model takes 28x28" in r.stderr


@pytest.mark.parametrize("make, message", [
    (lambda d, m: [str(d / "nowhere"), str(m)], "nowhere: no such model folder"),
    (lambda d, m: [str(d), str(m)], ": no model.pt"),
    (lambda d, m: [str(m), str(d)], ": no image files in this folder"),
], ids=["missing-model", "folder-without-model", "empty-folder"])
def test_bad_model_or_empty_folder_is_one_line(trained_model, tmp_path, make, message):
    (tmp_path / "empty").mkdir()
    r = call_cli("model.predict", *make(tmp_path / "empty", trained_model))
    assert message in one_error(r)


@pytest.mark.parametrize("flags, message", [
    (["--top", "0"], "--top 0: must be at least 1"),
    (["--show", "out.jpg"], "--show out.jpg: give a .png file"),
    (["--csv", "/no/such/dir/p.csv"], "--csv /no/such/dir/p.csv: the folder /no/such/dir does not exist"),
], ids=["top-0", "show-not-png", "csv-folder-missing"])
def test_bad_flags_are_one_line_before_any_work(trained_model, tmp_path, flags, message):
    r = call_cli("model.predict", str(trained_model), str(tmp_path), *flags)
    assert one_error(r) == message
