"""tuning/results/tables.py and tuning/results/reading.py: the results schema, the hidden_sizes codec and trial statuses."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tuning.results.reading import trial_row, with_hidden_sizes
from tuning.results.tables import (COMPLETED, DIVERGED, ERROR, INTERRUPTED, METRIC_COLUMNS, STOPPED_EARLY, fmt_value,
                                   ranked, usable)
from tuning.search.space import decode_sizes, encode_sizes


def epochs(accs: list[float], diverged_last: bool = False) -> pd.DataFrame:
    n = len(accs)
    return pd.DataFrame({"epoch": range(1, n + 1), "val_accuracy": accs, "val_loss": [1.0 / (i + 1) for i in range(n)],
                         "train_accuracy": accs, "train_loss": [1.0] * n,
                         "diverged": [False] * (n - 1) + [diverged_last] if n else []})


@pytest.mark.parametrize("rows, error, cut, status", [
    ([0.5, 0.6, 0.7], None, False, COMPLETED),
    ([0.5], None, False, STOPPED_EARLY),
    ([0.5, math.nan], None, False, DIVERGED),
    ([0.5], "Traceback", False, ERROR),
    ([0.5, 0.6, 0.7], None, True, INTERRUPTED),
])
def test_trial_row_status_says_why_the_trial_ended(rows, error, cut, status):
    # Rule: interrupted beats error beats diverged beats stopped early (fewer than max epochs) beats completed.
    diverged = status == DIVERGED
    row = trial_row("t", {"lr": 0.1}, epochs(rows, diverged), error, 3, 2.0, "node", cut)
    assert row["status"] == status


def test_trial_row_has_the_schema_columns_and_best_values():
    # Rule: a row holds every METRIC_COLUMN plus the hyperparameters, with best = max accuracy, min loss.
    row = trial_row("t", {"lr": 0.1, "hidden_sizes": [64, 32]}, epochs([0.5, 0.8, 0.7]), None, 3, 2.5, "n1")
    assert set(row) == {*METRIC_COLUMNS, "lr", "hidden_sizes"}
    assert (row["val_accuracy_best"], row["val_accuracy_last"], row["val_loss_best"], row["epochs_run"],
            row["hidden_sizes"]) == (0.8, 0.7, 1 / 3, 3, "64-32")


def test_conditional_depth_gets_hidden_sizes():
    # Rule: n_layers with width_1..width_n adds the hidden_sizes they trained.
    assert with_hidden_sizes({"n_layers": 2, "width_1": 10, "width_2": 5})["hidden_sizes"] == [10, 5]


@pytest.mark.parametrize("value, encoded", [([512, 256], "512-256"), ([64], "64"), (0.1, 0.1), ("sgd", "sgd")])
def test_encode_sizes(value, encoded):
    # Rule: lists of widths become "a-b"; other values pass unchanged.
    assert encode_sizes(value) == encoded


@pytest.mark.parametrize("value, decoded", [("512-256", [512, 256]), ("64", [64]), (64, [64]), ([8, 4], [8, 4])])
def test_decode_sizes(value, decoded):
    # Rule: the string, a bare width or a list all decode to the list of widths.
    assert decode_sizes(value) == decoded


@pytest.mark.parametrize("value, text", [(0.012345, "0.0123"), (16.0, "16"), (None, "-"), (math.nan, "-"),
                                         ([512, 256], "512-256"), ("adamw", "adamw"), (3, "3")])
def test_fmt_value(value, text):
    # Rule: floats to 3 significant digits (whole floats as ints), missing as '-', lists with the codec.
    assert fmt_value(value) == text


def test_ranked_leaves_out_failed_interrupted_and_nan_and_sorts_stably():
    # Rule: only usable trials are ranked, best first; equal accuracies keep file order.
    t = pd.DataFrame({"trial_id": list("abcdef"),
                      "status": [COMPLETED, DIVERGED, STOPPED_EARLY, INTERRUPTED, ERROR, COMPLETED],
                      "val_accuracy_best": [0.9, 0.99, 0.95, 0.99, 0.99, 0.95]})
    t.loc[len(t)] = ["g", COMPLETED, np.nan]
    assert list(usable(t)["trial_id"]) == ["a", "c", "f"]
    assert list(ranked(t)["trial_id"]) == ["c", "f", "a"]


def test_epochs_only_a_checkpoint_saved_are_added_to_rays_own():
    # Rule: the checkpoint's history gives the epochs it holds (the values the trial saved); Ray's rows
    # add the epochs after the newest checkpoint; one row per epoch, in epoch order.
    from tuning.results.reading import merge_epochs

    ray_rows = pd.DataFrame({"epoch": [1, 2, 4], "val_accuracy": [0.9, 0.91, 0.94]})
    history = pd.DataFrame([{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.5},
                            {"epoch": 3, "val_accuracy": 0.93}])
    out = merge_epochs(history, ray_rows)
    assert out["epoch"].tolist() == [1, 2, 3, 4] and out["val_accuracy"].tolist() == [0.5, 0.5, 0.93, 0.94]
    assert merge_epochs(pd.DataFrame(), ray_rows)["val_accuracy"].tolist() == [0.9, 0.91, 0.94]


def test_tables_count_a_trial_complete_when_its_checkpoint_holds_the_last_epoch(tmp_path):
    # Rule: a driver killed after a trial's last checkpoint but before Ray's result file reached
    # storage must not turn a finished trial into "stopped early" (the CI failure of stop 20).
    from ray.tune import Result

    from tuning.resume.checkpoints import write
    from tuning.results.reading import tables

    def row(e):
        return {"epoch": e, "train_loss": 0.1, "train_accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.9 + e / 100,
                "lr": 0.1, "epoch_time_s": 1.0, "diverged": False, "pid": 7, "timestamp": 100 + e}

    (tmp_path / "checkpoint_000002").mkdir()
    write(tmp_path / "checkpoint_000002", {}, [row(1), row(2), row(3)])
    seen = pd.DataFrame([row(1)]).assign(time_this_iter_s=1.5, time_total_s=1.5, trial_id="t1")
    result = Result(metrics={"trial_id": "t1", "config": {"lr": 0.1}}, checkpoint=None, error=None,
                    path=str(tmp_path), metrics_dataframe=seen)
    trials, eps = tables([result], max_epochs=3)
    assert trials["status"].tolist() == [COMPLETED] and trials["epochs_run"].tolist() == [3]
    assert trials["val_accuracy_best"].tolist() == [0.93] and trials["time_s"].tolist() == [3.5]
    assert eps["epoch"].tolist() == [1, 2, 3] and eps["timestamp"].tolist() == [101, 102, 103]
