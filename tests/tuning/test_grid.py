"""`python -m tuning.grid` on real Ray and real MNIST slices: tables, ASHA, divergence, retrain."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import call_cli, write_space
from tuning.grid import main as grid_main
from common.provenance import git_commit, versions


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    """A 2x2 grid (lr x batch size) for 2 epochs on 1,500 images, retrained with 2 seeds (a committee of
    both) and tested."""
    tmp = tmp_path_factory.mktemp("grid")
    space = write_space(tmp / "space.yaml", {"lr": {"values": [0.03, 0.1]}, "batch_size": {"values": [32, 128]}},
                        epochs=2)
    code = grid_main(["--space", str(space), "--subset", "1500", "--results-dir", str(tmp), "--name", "g",
                      "--scheduler", "fifo", "--retrain-seeds", "2", "--ensemble", "2"])
    assert code == 0
    return tmp / "g"


def test_two_by_two_grid_gives_four_valid_rows(finished):
    # Rule: one row per trial, each with a known status and its hyperparameters.
    t = pd.read_csv(finished / "trials.csv")
    assert len(t) == 4
    assert set(zip(t["lr"], t["batch_size"])) == {(0.03, 32), (0.03, 128), (0.1, 32), (0.1, 128)}
    assert (t["status"] == "completed").all() and (t["epochs_run"] == 2).all()
    assert t["val_accuracy_best"].between(0.5, 1).all() and t["node_id"].str.len().gt(0).all()


def test_tables_load_and_agree(finished):
    # Rule: parquet and CSV hold the same table; epochs.csv has one row per epoch each trial ran.
    csv, pq = pd.read_csv(finished / "trials.csv"), pd.read_parquet(finished / "trials.parquet")
    assert list(csv.columns) == list(pq.columns) and len(csv) == len(pq)
    assert list(csv["trial_id"]) == list(pq["trial_id"])
    ep = pd.read_csv(finished / "epochs.csv")
    assert len(ep) == csv["epochs_run"].sum()
    assert ep.groupby("trial_id")["epoch"].apply(list).map(lambda e: e == [1, 2]).all()
    best_per_trial = ep.groupby("trial_id")["val_accuracy"].max()
    for _, row in csv.iterrows():
        assert best_per_trial[row["trial_id"]] == pytest.approx(row["val_accuracy_best"])


def test_best_config_is_one_of_the_trials(finished):
    # Rule: best.json names the trial with the highest best validation accuracy, with its config.
    best = json.loads((finished / "best.json").read_text())
    t = pd.read_csv(finished / "trials.csv")
    top = t.loc[t["val_accuracy_best"].idxmax()]
    assert best["trial_id"] == top["trial_id"]
    assert best["config"]["lr"] == top["lr"] and best["config"]["batch_size"] == top["batch_size"]
    assert best["config"]["epochs"] == 2 and best["search"] == "grid"


def test_retrain_writes_test_report(finished):
    # Rule: the best config is retrained on the whole training pool and tested once on 10,000 images.
    rep = json.loads((finished / "test_report.json").read_text())
    assert rep["train_images"] == 1500 and rep["test_images"] == 10000
    assert 0.5 < rep["test_accuracy"]["mean"] <= 1 and rep["seeds"] == [0, 1]
    per_seed = rep["test_accuracy"]["per_seed"]
    assert len(per_seed) == 2 and rep["test_accuracy"]["mean"] == pytest.approx(sum(per_seed) / 2)
    assert rep["test_accuracy"]["std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
    assert len(rep["per_class_accuracy"]) == 10 and sum(map(sum, rep["confusion_matrix"])) == 10000
    assert rep["device"] == "cpu" and rep["autocast"] == "fp32"  # what precision resolved to (fp32 here)
    assert rep["versions"] == versions() and rep["git_commit"] == git_commit()
    assert (finished / "model.pt").stat().st_size > 0


def test_the_search_folder_is_a_model(finished, mnist_arrays, tmp_path):
    # Rule: model.predict takes a search folder (its retrained best) with nothing else.
    from data.csv import write_csv
    from model.card import load

    card = load(finished).card
    rep = json.loads((finished / "test_report.json").read_text())
    assert card.classes == rep["classes"] and list(card.image_shape) == rep["image_shape"]
    assert card.mlp.hidden_sizes == rep["config"]["hidden_sizes"]
    write_csv(tmp_path / "rows.csv", mnist_arrays[2][:5], mnist_arrays[3][:5])
    r = call_cli("model.predict", str(finished), str(tmp_path / "rows.csv"), "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 5


def test_the_committee_is_a_model_too(finished, mnist_arrays, tmp_path):
    # Rule: --ensemble 2 (of seeds) saves committee.pt with both retrained nets; test_report.json gives
    # its accuracy beside the single nets'; model.predict takes it.
    from data.csv import write_csv
    from model.card import load
    from model.committee import Committee

    rep = json.loads((finished / "test_report.json").read_text())
    assert (rep["committee"]["members"], rep["committee"]["of"]) == (2, "seeds")
    assert 0.5 < rep["committee"]["test_accuracy"] <= 1
    loaded = load(finished / "committee.pt")
    assert isinstance(loaded.model, Committee) and len(loaded.model.members) == 2
    write_csv(tmp_path / "rows.csv", mnist_arrays[2][:5], mnist_arrays[3][:5])
    r = call_cli("model.predict", str(finished / "committee.pt"), str(tmp_path / "rows.csv"), "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 5


def test_a_committee_of_configurations_takes_what_the_search_has(ray_session, tmp_path):
    # Rule: --ensemble 3 --ensemble-of configs on a 2-trial search retrains both configurations, says
    # the committee has 2 nets, and committee.pt holds those two networks.
    from model.card import load

    space = write_space(tmp_path / "s.yaml", {"hidden_sizes": {"values": [[16], [24]]}}, epochs=1, batch_size=64)
    r = call_cli("tuning.grid", "--space", str(space), "--subset", "600", "--results-dir", str(tmp_path),
                 "--name", "c", "--scheduler", "fifo", "--ensemble", "3", "--ensemble-of", "configs")
    assert r.returncode == 0, r.stderr
    assert "--ensemble 3: the search has 2 usable trial(s); the committee has 2 net(s)" in r.stdout
    rep = json.loads((tmp_path / "c" / "test_report.json").read_text())
    assert (rep["committee"]["members"], rep["committee"]["of"]) == (2, "configs")
    widths = sorted(m.cfg.hidden_sizes[0] for m in load(tmp_path / "c" / "committee.pt").model.members)
    assert widths == [16, 24]


def test_small_data_moves_the_first_rung(ray_session, tmp_path):
    # Rule: on 600 images (15 steps an epoch at batch 32) no rung judges a trial before 150 steps:
    # with 4 epochs there is no rung at all, so ASHA stops nothing, and the search says so.
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.1, 0.03, 0.01, 0.003]}}, epochs=4, batch_size=32)
    r = call_cli("tuning.grid", "--space", str(space), "--subset", "600", "--results-dir", str(tmp_path),
                 "--name", "r", "--grace-period", "1", "--reduction-factor", "2", "--no-retrain")
    assert r.returncode == 0, r.stderr
    assert "480 training images make 15 steps per epoch at batch 32: rungs none" in r.stdout
    t = pd.read_csv(tmp_path / "r" / "trials.csv")
    assert (t["status"] == "completed").all() and (t["epochs_run"] == 4).all()


def test_plots_and_tensorboard_logs_written(finished):
    # Rule: the grid's plots exist and every trial has TensorBoard event files.
    for name in ("val_acc_vs_lr.png", "val_acc_vs_batch.png", "heatmap_lr_batch.png", "learning_curves.png",
                 "confusion.png", "predictions.png"):
        assert (finished / "plots" / name).stat().st_size > 1000, name
    events = list((finished / "tune").glob("*/events.out.tfevents.*"))
    assert len(events) == 4
    # and each file holds its trial's validation curve, epoch by epoch, as epochs.csv has it
    from tests.tuning.results.test_tensorboard import read_scalars

    epochs = pd.read_csv(finished / "epochs.csv")
    for f in events:
        curve = read_scalars(f)["ray/tune/val_accuracy"]
        mine = epochs[[f.parent.name.startswith(f"train_trial_{t}_") for t in epochs["trial_id"]]]
        assert len(mine) >= 1
        assert curve == pytest.approx(dict(zip(mine["epoch"], mine["val_accuracy"])), abs=1e-6)


def test_asha_stops_weak_trials_and_records_divergence(ray_session, tmp_path):
    # Rule: with ASHA, a trial far behind the rung's leaders is stopped early; an absurd lr diverges,
    # is recorded as diverged, and the search still finishes.
    space = write_space(tmp_path / "s.yaml", {"lr": {"values": [0.1, 0.05, 0.03, 0.0003, 0.0001, 1.0e5]},
                                              "hidden_sizes": {"values": [[32, 16]]}},  # a list-valued grid too
                        epochs=4, batch_size=64, schedule="none")
    code = grid_main(["--space", str(space), "--subset", "1500", "--results-dir", str(tmp_path), "--name", "a",
                      "--grace-period", "1", "--reduction-factor", "2", "--min-rung-steps", "0", "--max-concurrent", "1",
                      "--no-retrain"])
    assert code == 0
    t = pd.read_csv(tmp_path / "a" / "trials.csv").set_index("lr")
    assert len(t) == 6 and (t["hidden_sizes"] == "32-16").all()
    assert t.loc[1.0e5, "status"] == "diverged" and t.loc[1.0e5, "epochs_run"] == 1
    stopped = t[t["status"] == "stopped_early"]
    assert len(stopped) >= 1 and (stopped["epochs_run"] < 4).all()
    assert t["epochs_run"].sum() < 5 * 4 + 1  # fewer trial-epochs than running all to the end
    best = t["val_accuracy_best"].idxmax()
    assert t.loc[best, "status"] == "completed" and t.loc[best, "epochs_run"] == 4


def test_bad_space_through_the_cli(tmp_path):
    # Rule: the CLI prints the space error as one line and exits 2 before starting Ray.
    f = tmp_path / "bad.yaml"
    f.write_text("params: {lr: {values: [0]}}")
    r = call_cli("tuning.grid", "--space", str(f), "--results-dir", str(tmp_path))
    assert r.returncode == 2 and "params.lr.values[0]: 0" in r.stderr and "Traceback" not in r.stderr


def test_report_redraws_without_ray(finished, tmp_path):
    # Rule: `python -m tuning.report` reprints the summary and redraws plots from the tables, never importing Ray.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished, copy, ignore=shutil.ignore_patterns("tune", "plots"))
    code = ("import sys, runpy; sys.argv=['tuning.report', %r]\n"
            "try:\n    runpy.run_module('tuning.report', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nassert 'ray' not in sys.modules, 'ray imported'\nprint('NO-RAY-OK')" % str(copy))
    import subprocess
    import sys

    from tests.conftest import ROOT
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "NO-RAY-OK" in r.stdout and "by best validation accuracy" in r.stdout
    assert (copy / "plots" / "heatmap_lr_batch.png").exists() and (copy / "plots" / "predictions.png").exists()


def test_default_grid_points_cover_the_seed_study():
    # Rule: the default grid is 48 distinct points, the notebook's best (lr 0.1, batch 16) first and the
    # rest ever farther from it (ties in a seeded order), and its hidden_sizes (sent to Ray as
    # "512-256") train the listed widths.
    from tuning.grid import distance_to_notebook_best, grid_points
    from tuning.search.space import apply_params, load_space

    space = load_space("grid")
    points = grid_points(space, seed=0)
    assert len(points) == 48 and len({tuple(sorted(p.items())) for p in points}) == 48
    assert points == grid_points(space, seed=0) and points != grid_points(space, seed=1)
    assert points[0]["lr"] == 0.1 and points[0]["batch_size"] == 16
    d = [distance_to_notebook_best(p) for p in points]
    assert d == sorted(d) and d[0] == 0 < d[-1]
    widths = {tuple(apply_params(space.base_config(), p).hidden_sizes) for p in points}
    assert widths == {(256,), (512, 256)}


def test_search_json_records_settings_and_wall_times(finished):
    # Rule: search.json keeps the flags the search ran with and its wall times, nested
    # (Ray Tune's fit <= the search with data and tables <= all, retrain included).
    info = json.loads((finished / "search.json").read_text())
    assert info["kind"] == "grid" and info["search"]["retrain_seeds"] == 2
    w = info["wall_s"]
    assert 0 < w["fit"] <= w["search"] <= w["all"]
