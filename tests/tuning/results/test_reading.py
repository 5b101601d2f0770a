"""tuning/results/reading.py reads typed epochs from damaged Ray files; tuning/results/progress_csv.py keeps progress.csv aligned after a resume;
tuning/results/summary.py counts the nodes that ran trials (issue 28). No Ray is started."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from tuning.resume.checkpoints import write
from tuning.results.progress_csv import progress_logger
from tuning.results.reading import merge_epochs, tables, trial_time_s, typed
from tuning.results.summary import node_count
from tuning.results.tables import COMPLETED, Tables


def epoch(e: int, pid: int = 7, acc: float | None = None) -> dict:
    """One epoch as the trainable reports it (and saves it in its checkpoint's history)."""
    return {"epoch": e, "train_loss": 0.1, "train_accuracy": 0.9, "val_loss": 0.2,
            "val_accuracy": acc if acc is not None else 0.9 + e / 100, "lr": 0.1, "epoch_time_s": 1.0,
            "diverged": False, "pid": pid, "timestamp": 100 + e, "node_id": f"n{pid}", "node_ip": "10.0.0.1",
            "ray_session": f"s{pid}"}


def ray_result(m: dict, iteration: int, checkpoint: bool) -> dict:
    """What Ray's CSV logger gets for one report: ours, then the keys Ray adds (should_checkpoint only
    with a checkpoint), in the order of a real progress.csv."""
    return {**m, "checkpoint_dir_name": f"checkpoint_{iteration:06d}" if checkpoint else None,
            **({"should_checkpoint": True} if checkpoint else {}), "done": False, "training_iteration": iteration,
            "trial_id": "t1", "date": "2026-12-07_16-17-11", "time_this_iter_s": 1.5, "time_total_s": 1.5 * iteration,
            "hostname": "vm", "node_ip": "10.0.0.1", "time_since_restore": 1.5, "iterations_since_restore": 1}


class FakeTrial:
    """What Ray's CSV logger reads of a trial; no checkpoint, so nothing is fetched from storage."""

    checkpoint = None

    def __init__(self, folder: Path):
        self.local_path = str(folder)

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def log_resumed(logger_of, folder: Path) -> Path:
    """Epochs 1-2 in a first driver (epoch 1 checkpointed), then epoch 3 (no checkpoint) after a resume,
    by a new logger appending to the same progress.csv, as after Ctrl-C and --resume."""
    first, trial = logger_of(), FakeTrial(folder)
    first.log_trial_result(1, trial, ray_result(epoch(1), 1, checkpoint=True))
    first.log_trial_result(2, trial, ray_result(epoch(2), 2, checkpoint=False))
    resumed = logger_of()
    resumed.log_trial_result(3, FakeTrial(folder), ray_result(epoch(3, pid=8), 1, checkpoint=False))
    resumed.log_trial_end(trial)
    return folder / "progress.csv"


def test_rays_csv_logger_slides_a_resumed_row_under_other_columns(tmp_path):
    # The cause of issue 28, kept as a record: Ray's logger takes its columns from the resumed trial's
    # first result, which lacks should_checkpoint, and writes no header: the hostname lands under
    # time_total_s, and pandas reads that column as text.
    from ray.tune.logger import CSVLoggerCallback

    df = pd.read_csv(log_resumed(CSVLoggerCallback, tmp_path))
    assert df["time_total_s"].tolist() == ["1.5", "3.0", "vm"]


def test_progress_logger_keeps_the_files_columns_after_a_resume(tmp_path):
    # Rule: rows appended after a resume go under the file's own header; a key it lacks is left empty.
    df = pd.read_csv(log_resumed(progress_logger, tmp_path))
    assert df["time_total_s"].tolist() == [1.5, 3.0, 1.5] and df["hostname"].tolist() == ["vm"] * 3
    assert df["pid"].tolist() == [7, 7, 8] and df["should_checkpoint"].isna().tolist() == [False, True, True]


def test_progress_logger_ends_a_row_a_kill_cut_before_appending(tmp_path):
    # Rule: a last row without its newline (a kill mid-copy) is ended, so the next row does not join it.
    path = tmp_path / "progress.csv"
    full = ray_result(epoch(1), 1, checkpoint=True)
    path.write_text(",".join(full) + "\n" + ",".join(str(v) for v in full.values())[:40])
    progress_logger().log_trial_result(2, FakeTrial(tmp_path), ray_result(epoch(2), 2, checkpoint=True))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[2].startswith("2,") and len(lines[2].split(",")) == len(full)


def test_text_in_a_numeric_column_drops_the_row_with_one_warning(caplog):
    # Rule: numbers written as text are numbers; a row with text where a number belongs is left out, and
    # one warning names the trial, the file and the column.
    df = pd.DataFrame({"epoch": ["1", "2", "3"], "val_accuracy": ["0.5", "0.6", "0.7"], "diverged": ["False"] * 3,
                       "time_total_s": ["1.5", "vm", "4.5"], "iterations_since_restore": [1, 2, 3]})
    with caplog.at_level(logging.WARNING, logger="tuning.results.reading"):
        out = typed(df, "t1", "p.csv", cut_rows=True)
    assert out["epoch"].tolist() == [1, 3] and out["val_accuracy"].tolist() == [0.5, 0.7]
    assert out["time_total_s"].tolist() == [1.5, 4.5] and out["diverged"].tolist() == [False, False]
    assert [r.getMessage() for r in caplog.records] == [
        "trial t1: 1 row(s) of p.csv left out: not a number in time_total_s ('vm')"]


def test_a_row_cut_short_is_dropped_with_one_warning(caplog):
    # Rule: a row whose last column is empty where the others fill it was cut (pandas pads it with NaN).
    text = "epoch,val_accuracy,diverged,time_total_s,iterations_since_restore\n1,0.5,False,1.5,1\n2,0.6,Fal\n"
    from io import StringIO

    with caplog.at_level(logging.WARNING, logger="tuning.results.reading"):
        out = typed(pd.read_csv(StringIO(text)), "t1", "p.csv", cut_rows=True)
    assert out["epoch"].tolist() == [1]
    assert [r.getMessage() for r in caplog.records] == [
        "trial t1: 1 row(s) of p.csv left out: not True/False in diverged ('Fal')"]
    with caplog.at_level(logging.WARNING, logger="tuning.results.reading"):
        caplog.clear()
        out = typed(pd.read_csv(StringIO(text.replace(",Fal\n", ",False,2.5\n"))), "t1", "p.csv", cut_rows=True)
    assert out["epoch"].tolist() == [1]
    assert [r.getMessage() for r in caplog.records] == [
        "trial t1: 1 row(s) of p.csv left out: cut short (no iterations_since_restore)"]


def test_merge_takes_the_history_then_rays_later_epochs():
    # Rule: the history's epochs as saved (a resumed trial's line), Ray's time of the same report (same
    # epoch, pid and timestamp), then Ray's first report of epochs no checkpoint holds yet.
    history = pd.DataFrame([epoch(1), epoch(2, pid=8, acc=0.5)])
    ray_rows = pd.DataFrame([{**epoch(1), "time_this_iter_s": 2.0}, {**epoch(2), "time_this_iter_s": 9.0},
                             {**epoch(3), "time_this_iter_s": 3.0}, {**epoch(3, pid=8), "time_this_iter_s": 4.0}])
    out = merge_epochs(history, ray_rows)
    assert out["epoch"].tolist() == [1, 2, 3] and out["pid"].tolist() == [7, 8, 7]
    assert out["val_accuracy"].tolist() == [0.91, 0.5, 0.93]
    assert out["time_this_iter_s"].fillna(-1).tolist() == [2.0, -1, 3.0]
    assert trial_time_s(out) == 2.0 + 1.0 + 3.0  # epoch 2's own epoch_time_s where Ray's row is not its report
    assert merge_epochs(pd.DataFrame(), ray_rows)["pid"].tolist() == [7, 7, 7]
    assert merge_epochs(history, pd.DataFrame())["epoch"].tolist() == [1, 2]


def test_trial_time_counts_each_epoch_once():
    df = pd.DataFrame({"time_this_iter_s": [2.0, "x", None], "epoch_time_s": [1.0, 1.5, 4.0]})
    assert trial_time_s(df) == 7.5
    assert trial_time_s(df.drop(columns="time_this_iter_s")) == 6.5
    assert math.isnan(trial_time_s(pd.DataFrame()))


def result_for(folder: Path, progress: Path):
    from ray.tune import Result

    return Result(metrics={"trial_id": "t1", "config": {"lr": 0.1}}, checkpoint=None, error=None, path=str(folder),
                  metrics_dataframe=pd.read_csv(progress))


def test_tables_of_a_resumed_trial_from_rays_own_slid_file(tmp_path, caplog):
    # Rule (issue 28): the file Ray's logger left gives numbers, never a traceback; the slid row is left out
    # with one warning, and the checkpoint's history supplies its epoch.
    from ray.tune.logger import CSVLoggerCallback

    progress = log_resumed(CSVLoggerCallback, tmp_path)
    (tmp_path / "checkpoint_000001").mkdir()
    write(tmp_path / "checkpoint_000001", {}, [epoch(1), epoch(2), epoch(3, pid=8)])
    with caplog.at_level(logging.WARNING, logger="tuning.results.reading"):
        trials, eps = tables([result_for(tmp_path, progress)], max_epochs=3)
    assert [r.getMessage() for r in caplog.records] == [
        f"trial t1: 1 row(s) of {progress} left out: not a number in time_total_s ('vm')"]
    assert trials["status"].tolist() == [COMPLETED] and trials["epochs_run"].tolist() == [3]
    assert trials["val_accuracy_best"].tolist() == [0.93] and trials["time_s"].tolist() == [1.5 + 1.5 + 1.0]
    assert eps["pid"].tolist() == [7, 7, 8] and eps["node_id"].tolist() == ["n7", "n7", "n8"]


def test_tables_of_a_resumed_trial_with_the_aligned_file(tmp_path, caplog):
    progress = log_resumed(progress_logger, tmp_path)
    (tmp_path / "checkpoint_000001").mkdir()
    write(tmp_path / "checkpoint_000001", {}, [epoch(1), epoch(2), epoch(3, pid=8)])
    with caplog.at_level(logging.WARNING):
        trials, eps = tables([result_for(tmp_path, progress)], max_epochs=3)
    assert not caplog.records
    assert trials["time_s"].tolist() == [4.5] and eps["epoch"].tolist() == [1, 2, 3]


def folder_with(epochs: list[dict], trial_nodes: list[str]) -> Tables:
    trials = pd.DataFrame({"trial_id": [f"t{i}" for i in range(len(trial_nodes))], "node_id": trial_nodes})
    return Tables(Path("x"), trials, pd.DataFrame(epochs))


@pytest.mark.parametrize("rows, nodes", [
    # a local Ray started again for --resume: a new node id for the same machine, in a new session
    ([("a", "10.0.0.1", "s1"), ("b", "10.0.0.1", "s2"), ("b", "10.0.0.1", "s2")], 1),
    # two Ray nodes on one machine (tests/test_faults.py's cluster): one IP, two ids in one session
    ([("a", "127.0.0.1", "s1"), ("b", "127.0.0.1", "s1")], 2),
    # a two-machine cluster started again: two ids per session, and still two IPs
    ([("a", "10.0.0.1", "s1"), ("b", "10.0.0.2", "s1"), ("c", "10.0.0.1", "s2"), ("d", "10.0.0.2", "s2")], 2),
    # a cluster started again on other machines: the IPs say three
    ([("a", "10.0.0.1", "s1"), ("b", "10.0.0.2", "s2"), ("c", "10.0.0.3", "s3")], 3),
])
def test_node_count_is_the_nodes_that_ran_trials(rows, nodes):
    epochs = [{"trial_id": "t", "node_id": n, "node_ip": ip, "ray_session": s} for n, ip, s in rows]
    assert node_count(folder_with(epochs, ["x", "y"])) == nodes


def test_node_count_of_an_older_folder_counts_trials_node_ids():
    # Rule: epochs.csv without ray_session (folders written before issue 28): trials.csv's node ids.
    assert node_count(folder_with([{"trial_id": "t", "epoch": 1}], ["a", "b", "a"])) == 2
