"""Damaged and interrupted results folders: cut table rows are dropped with one warning, an
interrupted search says how many of its planned trials ran.

Folders are written by hand, byte for byte, so each test knows exactly where a row is cut.
"""
from __future__ import annotations

import json
import logging

import pytest

from common.errors import InputError
from tests.conftest import call_cli
from tuning.results.summary import summary_text
from tuning.results.tables import METRIC_COLUMNS, load_tables, ranked

TRIAL_COLUMNS = [*METRIC_COLUMNS, "lr", "batch_size"]  # 13 fields
EPOCH_COLUMNS = ["trial_id", "epoch", "val_accuracy", "val_loss"]


def trial_line(i: int, status: str = "completed", acc: float | None = None) -> str:
    acc = 0.90 + 0.01 * i if acc is None else acc
    return f"t{i:03d},{status},2,{acc},{acc},0.3,0.3,0.95,0.2,6.0,node0,0.1,64\n"


def make_folder(root, name="x", statuses=("completed",) * 4, search=None, accs=None):
    """trials.csv with one row per status, epochs.csv with 2 epochs per trial, search.json if given."""
    folder = root / name
    folder.mkdir()
    accs = accs or [None] * len(statuses)
    (folder / "trials.csv").write_text(",".join(TRIAL_COLUMNS) + "\n" + "".join(
        trial_line(i, s, a) for i, (s, a) in enumerate(zip(statuses, accs))))
    (folder / "epochs.csv").write_text(",".join(EPOCH_COLUMNS) + "\n" + "".join(
        f"t{i:03d},{e},0.9{e},0.{5 - e}\n" for i in range(len(statuses)) for e in (1, 2)))
    if search is not None:
        (folder / "search.json").write_text(search if isinstance(search, str) else json.dumps(search))
    return folder


def cut(path, keep: str) -> None:
    """Cut the file's last line just after `keep` (the text its last row still has)."""
    text = path.read_text()
    last = text[:-1].rfind("\n") + 1
    assert text[last:].startswith(keep)
    path.write_text(text[:last] + keep)


def test_cli_drops_a_cut_trial_row_with_one_warning(tmp_path):
    # Rule: a trials.csv cut inside its 4th row counts 3 trials, warns once with the file and line, exits 0.
    folder = make_folder(tmp_path)
    cut(folder / "trials.csv", "t003,completed,2")
    r = call_cli("tuning.report", str(folder), "--no-plots")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"WARNING tuning.results.tableio: {folder / 'trials.csv'}: line 5 is cut short (3 of 13 fields); ignored"]
    assert r.stdout.splitlines()[0] == "search x: 3 trials: 3 completed"


def test_cut_epoch_row_is_dropped_not_drawn(tmp_path, caplog):
    # Rule: an epochs.csv cut inside its last row loses that row (no half-NaN epoch) and warns once.
    folder = make_folder(tmp_path)
    cut(folder / "epochs.csv", "t003,2,0.9")
    with caplog.at_level(logging.WARNING):
        t = load_tables(folder)
    assert caplog.messages == [f"{folder / 'epochs.csv'}: line 9 is cut short (3 of 4 fields); ignored"]
    assert len(t.epochs) == 7 and t.epochs["val_loss"].notna().all()
    assert t.epochs.iloc[-1].tolist() == ["t003", 1, 0.91, 0.4]


def test_last_row_without_newline_is_cut_even_with_every_field(tmp_path, caplog):
    # Rule: the tables always end with a newline, so a last row without one (cut inside its last cell) is dropped.
    folder = make_folder(tmp_path)
    cut(folder / "trials.csv", trial_line(3)[:-2])  # batch_size "64" cut to "6"
    with caplog.at_level(logging.WARNING):
        t = load_tables(folder)
    assert caplog.messages == [
        f"{folder / 'trials.csv'}: line 5 is cut short (13 of 13 fields, no newline at the end); ignored"]
    assert t.trials["trial_id"].tolist() == ["t000", "t001", "t002"]


def test_short_rows_inside_the_file_are_dropped_in_one_warning(tmp_path, caplog):
    # Rule: every row with fewer fields than the header is dropped; one warning lists all their lines.
    folder = make_folder(tmp_path, statuses=("completed",) * 5)
    lines = (folder / "trials.csv").read_text().splitlines(keepends=True)
    lines[2], lines[4] = "t001,completed\n", "t003\n"
    (folder / "trials.csv").write_text("".join(lines))
    with caplog.at_level(logging.WARNING):
        t = load_tables(folder)
    assert caplog.messages == [f"{folder / 'trials.csv'}: lines 3, 5 are cut short (2, 1 of 13 fields); ignored"]
    assert t.trials["trial_id"].tolist() == ["t000", "t002", "t004"]


def test_whole_tables_load_without_a_warning(tmp_path, caplog):
    # Rule: undamaged tables (quoted cells included) load every row and warn nothing.
    folder = make_folder(tmp_path)
    text = (folder / "trials.csv").read_text().replace("node0", '"node,0"')
    (folder / "trials.csv").write_text(text)
    with caplog.at_level(logging.WARNING):
        t = load_tables(folder)
    assert caplog.messages == []
    assert len(t.trials) == 4 and len(t.epochs) == 8 and t.trials["node_id"].iloc[0] == "node,0"


def test_interrupted_search_says_how_many_of_the_planned_trials_ran(tmp_path):
    # Rule: search.json state "interrupted" puts "interrupted: N of M trials" first; N excludes interrupted trials.
    folder = make_folder(tmp_path, statuses=("completed", "stopped_early", "diverged", "interrupted", "interrupted"),
                         search={"kind": "grid", "state": "interrupted", "planned": 10})
    lines = summary_text(load_tables(folder)).splitlines()
    assert lines[0] == "interrupted: 3 of 10 trials (run the search again with --resume to finish it)"
    assert lines[1] == "search x: 5 trials: 1 completed, 1 stopped_early, 1 diverged, 2 interrupted"


def test_interrupted_trials_are_never_ranked(tmp_path):
    # Rule: an interrupted trial is not usable, even with the best accuracy of the table.
    folder = make_folder(tmp_path, statuses=("completed", "interrupted"), accs=(0.90, 0.99))
    assert ranked(load_tables(folder).trials)["trial_id"].tolist() == ["t000"]


@pytest.mark.parametrize("search", [None, {"kind": "grid"}, {"state": "finished", "planned": 4},
                                    {"state": "running", "planned": 4}])
def test_no_interrupted_line_unless_search_json_says_so(tmp_path, search):
    # Rule: folders without search.json (older searches), or not interrupted, start with the usual line.
    folder = make_folder(tmp_path, search=search)
    assert summary_text(load_tables(folder)).splitlines()[0] == "search x: 4 trials: 4 completed"


def test_unreadable_search_json_is_one_input_error(tmp_path):
    # Rule: a search.json that is not valid JSON raises one line naming it.
    folder = make_folder(tmp_path, search="{oops")
    with pytest.raises(InputError) as e:
        load_tables(folder)
    assert str(e.value).startswith(f"{folder / 'search.json'}: unreadable JSON (") and "\n" not in str(e.value)


def test_cli_interrupted_search_exits_0(tmp_path):
    # Rule: `python -m tuning.report` on an interrupted search prints the interrupted line first and exits 0.
    folder = make_folder(tmp_path, statuses=("completed", "interrupted"), search={"state": "interrupted", "planned": 6})
    r = call_cli("tuning.report", str(folder), "--no-plots")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.splitlines()[:2] == ["interrupted: 1 of 6 trials (run the search again with --resume to finish it)",
                                         "search x: 2 trials: 1 completed, 1 interrupted"]
