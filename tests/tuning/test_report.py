"""The search report: results folders read back, summaries, plots and `python -m tuning.report`.

Folders are built here with pandas, following the results schema (the tuner is not needed).
"""
from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from common.errors import InputError
from model.mlp import MLP, MLPConfig
from tests.conftest import call_cli
from tuning.results import plots
from tuning.results.figures import redraw
from tuning.results.summary import compare_text, summary_text
from tuning.results.tables import METRIC_COLUMNS, hyperparameters, load_tables

LRS, BATCHES = (0.01, 0.05, 0.2, 1.0), (64, 256)
CORE_PNGS = ("val_acc_vs_lr.png", "val_acc_vs_batch.png", "heatmap_lr_batch.png", "learning_curves.png")
TEST_REPORT = {
    "config": {"lr": 0.05, "batch_size": 64, "hidden_sizes": [32], "epochs": 4}, "epochs": 4, "seeds": [0, 1, 2],
    "test_accuracy": {"mean": 0.98453, "std": 0.0005, "per_seed": [0.9840, 0.9850, 0.9846]},
    "test_loss": {"mean": 0.0512, "std": 0.001, "per_seed": [0.051, 0.052, 0.0516]},
    "per_class_accuracy": [0.98] * 10,
    "confusion_matrix": (np.eye(10, dtype=int) * 980 + 2).tolist(), "data_checksum": "abc",
    "versions": {"torch": "2"}, "git_commit": "deadbeef", "time_s": 12.0,
}


def trial_rows(lrs=LRS, batches=BATCHES, epochs=4, fail=True):
    """trials.csv and epochs.csv rows for an lr x batch grid; lr 1.0 / batch 64 diverges, lr 1.0 / 256 errors."""
    trials, per_epoch = [], []
    for i, (lr, bs) in enumerate((lr, bs) for lr in lrs for bs in batches):
        tid = f"t{i:03d}"
        status = "diverged" if fail and lr >= 1 and bs == 64 else "error" if fail and lr >= 1 else "completed"
        n = {"completed": epochs, "diverged": 2, "error": 0}[status]
        final = 0.985 - 0.05 * abs(math.log10(lr / 0.05)) - (0.004 if bs == 256 else 0)
        rows = []
        for e in range(1, n + 1):
            acc = final - 0.08 * math.exp(-e)
            bad = status == "diverged" and e == n
            rows.append({"trial_id": tid, "epoch": e, "train_loss": np.nan if bad else 1 - acc,
                         "train_accuracy": np.nan if bad else acc + 0.005, "val_loss": np.nan if bad else 1.1 - acc,
                         "val_accuracy": np.nan if bad else acc, "lr": lr, "epoch_time_s": 1.5, "diverged": bad})
        per_epoch += rows
        val = pd.DataFrame(rows, columns=["val_accuracy", "val_loss", "train_accuracy", "train_loss"])
        nan_if_failed = (lambda v: np.nan) if status != "completed" else (lambda v: v)
        trials.append({
            "trial_id": tid, "status": status, "lr": lr, "batch_size": bs, "hidden_sizes": "32",
            "epochs_run": n, "val_accuracy_best": nan_if_failed(val["val_accuracy"].max()),
            "val_accuracy_last": nan_if_failed(val["val_accuracy"].iloc[-1] if n else np.nan),
            "val_loss_best": nan_if_failed(val["val_loss"].min()),
            "val_loss_last": nan_if_failed(val["val_loss"].iloc[-1] if n else np.nan),
            "train_accuracy_last": nan_if_failed(val["train_accuracy"].iloc[-1] if n else np.nan),
            "train_loss_last": nan_if_failed(val["train_loss"].iloc[-1] if n else np.nan),
            "time_s": 1.5 * n + 0.5, "node_id": f"node{i % 2}",
        })
    return pd.DataFrame(trials), pd.DataFrame(per_epoch)


def make_folder(root, name="grid_a", model=True, test_report=True, **kw):
    """A results folder as the tuner writes it; the best trial is the completed one with the top accuracy."""
    folder = root / name
    folder.mkdir(parents=True)
    trials, epochs = trial_rows(**kw)
    trials.to_csv(folder / "trials.csv", index=False)
    trials.to_parquet(folder / "trials.parquet", index=False)
    epochs.to_csv(folder / "epochs.csv", index=False)
    best = trials.sort_values("val_accuracy_best", ascending=False).iloc[0]
    config = {"lr": float(best["lr"]), "batch_size": int(best["batch_size"]), "hidden_sizes": [32], "epochs": 4,
              "dropout": 0.2, "layer_norm": True, "seed": 0, "threads": 1, "device": "cpu"}
    (folder / "best.json").write_text(json.dumps({
        "trial_id": best["trial_id"], "config": config, "val_accuracy": float(best["val_accuracy_best"]),
        "epochs_run": int(best["epochs_run"]), "search": "grid", "name": name}))
    if test_report:
        (folder / "test_report.json").write_text(json.dumps(TEST_REPORT))
    if model:
        torch.save(MLP(MLPConfig(in_features=784, hidden_sizes=[32], num_classes=10)).state_dict(), folder / "model.pt")
    return folder


def all_plots(epochs, trials):
    return [plots.accuracy_vs_param(trials), plots.accuracy_vs_batch(trials), plots.heatmap(trials),
            plots.top_learning_curves(epochs, trials)]


def test_load_tables_reads_schema_and_splits_hyperparameters(tmp_path):
    # Rule: every column outside METRIC_COLUMNS is a hyperparameter; "32" stays the string hidden_sizes.
    t = load_tables(make_folder(tmp_path))
    assert hyperparameters(t.trials) == ["lr", "batch_size", "hidden_sizes"] == t.params
    assert set(METRIC_COLUMNS) <= set(t.trials.columns)
    assert t.trials["hidden_sizes"].tolist() == ["32"] * 8 and t.trials["trial_id"].iloc[0] == "t000"
    assert t.best["search"] == "grid" and t.test_report["seeds"] == [0, 1, 2] and t.name == "grid_a"


def test_redraw_writes_every_plot(tmp_path):
    # Rule: a full folder gets the four search plots, confusion.png and predictions.png, as real PNGs, no temp files.
    folder = make_folder(tmp_path)
    paths = redraw(folder, load_tables(folder))
    names = {p.name for p in paths}
    assert names == {*CORE_PNGS, "confusion.png", "predictions.png"}
    for p in paths:
        assert p.parent == folder / "plots" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    assert not list((folder / "plots").glob(".*"))


def test_redraw_without_retrain_skips_test_plots(tmp_path):
    # Rule: with no test_report.json and no model.pt (--no-retrain) only the search plots are drawn.
    folder = make_folder(tmp_path, model=False, test_report=False)
    t = load_tables(folder)
    assert {p.name for p in redraw(folder, t)} == set(CORE_PNGS)
    assert "not measured" in summary_text(t)


def test_summary_names_best_trial_and_test_accuracy(tmp_path):
    # Rule: the summary gives status counts, the top table in %, the best trial and "mean % ± std (n seeds)".
    text = summary_text(load_tables(make_folder(tmp_path)), top=3)
    assert "8 trials: 6 completed, 1 diverged, 1 error" in text
    assert "top 3 by best validation accuracy" in text and "val acc %" in text
    assert "best: t002 (val 98.35 %)" in text and "hidden_sizes=32" in text
    assert "98.45 % ± 0.05 (3 seeds)" in text
    assert "26 trial-epochs" in text  # 6 x 4 completed + 2 diverged + 0 error
    top_lines = text.split("top 3")[1].splitlines()[2:5]
    assert [l.split()[0] for l in top_lines] == ["t002", "t003", "t004"]


def test_model_not_matching_config_is_input_error(tmp_path):
    # Rule: a model.pt that does not fit best.json's architecture is one InputError naming model.pt.
    folder = make_folder(tmp_path, model=False)
    torch.save(MLP(MLPConfig(in_features=784, hidden_sizes=[16], num_classes=10)).state_dict(), folder / "model.pt")
    with pytest.raises(InputError, match="model.pt"):
        redraw(folder, load_tables(folder))


@pytest.mark.parametrize("damage, needle", [
    (lambda f: (f / "trials.csv").unlink(), "no trials.csv"),
    (lambda f: pd.read_csv(f / "trials.csv").drop(columns="status").to_csv(f / "trials.csv"), "status"),
    (lambda f: (f / "epochs.csv").write_text("trial_id,epoch\nt000,1\n"), "val_accuracy"),
    (lambda f: (f / "best.json").write_text("{oops"), "best.json"),
])
def test_bad_folder_is_one_input_error(tmp_path, damage, needle):
    # Rule: a folder that is not a readable results folder raises InputError naming the file or column.
    folder = make_folder(tmp_path, model=False)
    damage(folder)
    with pytest.raises(InputError, match=needle) as e:
        load_tables(folder)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_plots_cope_with_one_trial_and_all_diverged():
    # Rule: one trial draws every plot; when all trials diverged the curves are skipped, no exception.
    trials, epochs = trial_rows(lrs=(0.05,), batches=(128,))
    figs = all_plots(epochs, trials)
    assert all(f is not None for f in figs)
    trials, epochs = trial_rows(lrs=(1.0, 2.0), batches=(64,))
    assert set(trials["status"]) == {"diverged"}
    figs = all_plots(epochs, trials)
    assert figs[3] is None and figs[0] is not None
    assert any("diverged" in t.get_text() for t in figs[0].axes[0].get_legend().get_texts())
    plt.close("all")


def test_plots_without_a_column_return_none():
    # Rule: a plot whose column was not searched returns None instead of a meaningless figure.
    trials, epochs = trial_rows()
    trials = trials.drop(columns="batch_size")
    assert plots.accuracy_vs_batch(trials) is None and plots.heatmap(trials) is None
    assert plots.accuracy_vs_param(trials) is not None  # lr alone still reads
    plt.close("all")


def test_heatmap_bins_continuous_lr():
    # Rule: an Optuna-style continuous lr (many distinct values) is binned into a few log-spaced rows.
    lrs = tuple(np.geomspace(1e-3, 0.3, 24))
    trials, epochs = trial_rows(lrs=lrs, batches=(64, 128), fail=False)
    fig = plots.heatmap(trials)
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert 2 < len(rows) <= 8 and "–" in rows[0]
    assert plots.accuracy_vs_batch(trials) is not None  # lr as a colour bar, not 24 lines
    plt.close("all")


def test_cli_prints_summary_and_draws(tmp_path):
    # Rule: `python -m tuning.report FOLDER` exits 0, prints the top table and writes the plots.
    folder = make_folder(tmp_path, model=False)
    r = call_cli("tuning.report", str(folder), "--top", "2")
    assert r.returncode == 0, r.stderr
    assert "top 2 by best validation accuracy" in r.stdout and "t002" in r.stdout
    assert "wrote 5 plots" in r.stdout and (folder / "plots" / "confusion.png").stat().st_size > 0


def test_cli_compare_prints_both_names(tmp_path):
    # Rule: --compare prints one row per folder (by name) and writes compare.png into --out.
    a = make_folder(tmp_path, "grid_a", model=False)
    b = make_folder(tmp_path, "optuna_b", model=False, test_report=False, lrs=(0.03, 0.1), fail=False)
    r = call_cli("tuning.report", str(a), str(b), "--compare", "--out", str(tmp_path / "cmp"))
    assert r.returncode == 0, r.stderr
    assert "grid_a" in r.stdout and "optuna_b" in r.stdout and "98.45 % ± 0.05 (3 seeds)" in r.stdout
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0
    assert compare_text([a, b]).splitlines()[0].split()[:2] == ["name", "search"]


def test_cli_bad_folder_exits_2_in_one_line(tmp_path):
    # Rule: a folder without trials.csv exits 2 with one line naming it, no traceback.
    (tmp_path / "empty").mkdir()
    r = call_cli("tuning.report", str(tmp_path / "empty"), "--no-plots")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'empty'}: not a results folder (no trials.csv)"]


def test_unwritable_out_is_input_error(tmp_path):
    # Rule: an --out that cannot be created (a file is in the way) is an InputError naming it (run_cli: exit 2).
    from tuning.report import main

    folder = make_folder(tmp_path, model=False, test_report=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot write plots") as e:
        main([str(folder), "--no-plots"]) or main([str(folder), "--out", str(tmp_path / "file" / "sub")])
    assert str(tmp_path / "file") in str(e.value) and "\n" not in str(e.value)


def test_a_finished_search_without_best_json_still_reports(tmp_path, trained_model):
    # Rule: best.json deleted after the search: the summary says so, and the predictions of the saved
    # model (model.pt + model.json) are still drawn; exit 0, no traceback.
    folder = make_folder(tmp_path, model=False)
    for name in ("model.pt", "model.json"):
        (folder / name).write_bytes((trained_model / name).read_bytes())
    (folder / "search.json").write_text(json.dumps({"kind": "grid", "state": "finished", "planned": 8,
                                                    "data": {"subset": 2000}}))
    (folder / "best.json").unlink()
    r = call_cli("tuning.report", str(folder))
    assert r.returncode == 0, r.stderr
    assert "best: t002 (no best.json)" in r.stdout and "predictions.png" in r.stdout
    assert (folder / "plots" / "predictions.png").stat().st_size > 0


def test_out_inside_the_searchs_image_folder_is_refused(tmp_path):
    # Rule: plots drawn into the training --image-dir would be read back as data: one line, exit 2, nothing drawn.
    folder = make_folder(tmp_path, model=False)
    (tmp_path / "shapes" / "a").mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({"kind": "grid", "state": "finished", "planned": 8,
                                                    "data": {"image_dir": str(tmp_path / "shapes")}}))
    r = call_cli("tuning.report", str(folder), "--out", str(tmp_path / "shapes"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'shapes'}: {tmp_path / 'shapes'} is inside the input folder {tmp_path / 'shapes'}, "
        "whose files are read as data: write the results elsewhere"]
    assert [p.name for p in (tmp_path / "shapes").iterdir()] == ["a"] and not (folder / "plots").exists()
