"""The foundation's CLIs typed as a user would: `python -m model.train`, `python -m data`."""
from __future__ import annotations

import json

import pytest

from tests.conftest import call_cli, run_cli


@pytest.mark.slow  # trains in a subprocess
def test_model_train_one_epoch_on_a_slice(tmp_path):
    # Rule: a one-epoch run on a small slice exits 0, prints the notebook-style lines, writes its files.
    r = run_cli("model.train", "--epochs", "1", "--subset", "1000", "--hidden-sizes", "64",
                "--results-dir", str(tmp_path), "--name", "smoke", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "Epoch [1/1], Training Loss:" in r.stdout and "Test Accuracy:" in r.stdout
    out = tmp_path / "runs" / "smoke"
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["hidden_sizes"] == [64] and m["seed"] == 0
    assert len(m["history"]) == 1 and 0.5 < m["val_accuracy"] <= 1 and 0.5 < m["test_accuracy"] <= 1
    assert len(m["confusion_matrix"]) == 10 and sum(map(sum, m["confusion_matrix"])) == 10000
    for f in ("model.pt", "model.json", "curves.png", "confusion.png", "predictions.png"):
        assert (out / f).stat().st_size > 0
    from model.card import load

    card = load(out).card  # the run folder alone is enough to use the model
    assert card.mlp.hidden_sizes == [64] and card.classes == [str(d) for d in range(10)] and card.image_shape == (28, 28)
    assert (card.mean, card.std) == (m["normalisation"]["mean"], m["normalisation"]["std"])


def test_model_train_refuses_to_overwrite(tmp_path):
    # Rule: a second run with the same --name fails in one line instead of overwriting results.
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "metrics.json").write_text("{}")
    r = call_cli("model.train", "--epochs", "1", "--results-dir", str(tmp_path), "--name", "x")
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert (tmp_path / "runs" / "x" / "metrics.json").read_text() == "{}"


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "--epochs 0"),
    (["--lr", "-0.1"], "--lr -0.1"),
    (["--data-dir", "/no/such/folder"], "/no/such/folder"),
    (["--optimizer", "adam"], "invalid choice: 'adam'"),
    (["--batch-size", "ten"], "invalid int value: 'ten'"),
])
def test_bad_flag_is_one_line_exit_2(tmp_path, args, needle):
    # Rule: bad flags and missing data exit 2 with one line naming the flag or file, no traceback.
    r = call_cli("model.train", *args, "--results-dir", str(tmp_path))
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.startswith("error") or ": error:" in l]) == 1


@pytest.mark.slow  # trains in a subprocess
def test_model_train_reads_seed_csv(tmp_path, mnist_arrays):
    # Rule: --train-csv/--test-csv in the notebook's format (label column not first) train end to end.
    from data.csv import write_csv

    tx, ty, sx, sy = mnist_arrays
    write_csv(tmp_path / "train.csv", tx[:600], ty[:600], label_position=5)
    write_csv(tmp_path / "test.csv", sx[:200], sy[:200])
    r = run_cli("model.train", "--epochs", "1", "--hidden-sizes", "32", "--train-csv", str(tmp_path / "train.csv"),
                "--test-csv", str(tmp_path / "test.csv"), "--results-dir", str(tmp_path), "--name", "csv")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "runs" / "csv" / "metrics.json").read_text())
    assert m["data"]["train"] == 480 and m["data"]["test"] == 200


def test_data_cli_prints_distribution_and_writes_pictures(tmp_path):
    # Rule: `python -m data` prints shapes and class counts and writes two PNGs under results/data/.
    r = call_cli("data", "--results-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "(48000, 28, 28)" in r.stdout and "1135" in r.stdout  # test count of digit 1
    assert (tmp_path / "data" / "samples.png").stat().st_size > 1000
    assert (tmp_path / "data" / "classes.png").stat().st_size > 1000


@pytest.mark.slow  # trains in a subprocess
def test_model_train_divergence_exits_nonzero_with_strict_json(tmp_path):
    # Rule: a diverged run says so in one stderr line, exits 1, and writes strict JSON (null, not NaN).
    r = run_cli("model.train", "--lr", "1e6", "--epochs", "2", "--subset", "1000", "--hidden-sizes", "16",
                "--results-dir", str(tmp_path), "--name", "d", "--threads", "1", "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == ["error: training diverged at epoch 1 (non-finite loss); try a smaller --lr"]
    text = (tmp_path / "runs" / "d" / "metrics.json").read_text()
    m = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert m["diverged"] is True and m["test_loss"] is None and len(m["history"]) == 1
