"""tuning/resume/state_backup.py and its use in preflight.check_experiment: resuming past a state cut mid-save."""
from __future__ import annotations

import json
import logging
import pickle

import pytest

from common.errors import InputError
from tuning.driver.preflight import check_experiment
from tuning.resume.state_backup import back_up, backup_of, is_experiment_state

STATE = {"trial_data": [["t1", "done"]], "runner_data": {"n": 1}}


def write_state(folder, obj=STATE, name="experiment_state-2026-11-27_10-00-00.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(obj))
    return folder / name


def test_back_up_copies_a_whole_state(tmp_path):
    # Rule: the newest state that parses is copied byte for byte to <name>.bak.
    state = write_state(tmp_path / "tune")
    [bak] = back_up(tmp_path / "tune")
    assert bak == state.with_name(state.name + ".bak") and bak.read_bytes() == state.read_bytes()


def test_back_up_keeps_the_old_copy_when_the_state_is_cut(tmp_path):
    # Rule: a cut state (a save in flight) is not copied; the last whole backup stays as it was.
    state = write_state(tmp_path / "tune")
    back_up(tmp_path / "tune")
    state.write_text(json.dumps({**STATE, "runner_data": {"n": 2}})[:20])
    assert back_up(tmp_path / "tune") is None
    assert json.loads(backup_of(state).read_text()) == STATE


def test_back_up_of_an_empty_folder_is_none(tmp_path):
    # Rule: before Ray's first save there is nothing to copy.
    assert back_up(tmp_path) is None


def test_cut_state_is_replaced_by_its_backup_with_a_warning(tmp_path, caplog):
    # Rule: --resume over a state cut by a kill restores the backup in its place and says so.
    state = write_state(tmp_path / "tune")
    back_up(tmp_path / "tune")
    state.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        check_experiment(tmp_path / "tune")
    assert json.loads(state.read_text()) == STATE
    assert f"{state}: damaged experiment state (cut by a kill while it was saved); resuming from its backup" \
        in caplog.text


def test_cut_state_without_backup_is_one_error_naming_it(tmp_path):
    # Rule: with no whole backup, the damaged state is one InputError naming the file, and it stays as it was.
    state = write_state(tmp_path / "tune")
    state.write_text("{\"trial")
    with pytest.raises(InputError, match=r"damaged experiment state"):
        check_experiment(tmp_path / "tune")
    assert state.read_text() == "{\"trial"


def write_searcher(folder, obj, name="searcher-state-2026-11-27_10-00-00.pkl"):
    (folder / name).write_bytes(pickle.dumps(obj))
    return folder / name


def test_back_up_copies_the_searcher_state_with_the_experiment_state(tmp_path):
    # Rule: the searcher's pickles are backed up together with the experiment state, as one save.
    state = write_state(tmp_path / "tune")
    searcher = write_searcher(tmp_path / "tune", {"trials": 3})
    assert [p.name for p in back_up(tmp_path / "tune")] == [state.name + ".bak", searcher.name + ".bak"]
    assert pickle.loads(backup_of(searcher).read_bytes()) == {"trials": 3}


def test_a_cut_searcher_state_stops_the_backup_of_every_file(tmp_path):
    # Rule: all or nothing: with the searcher's pickle cut, neither file's backup moves.
    write_state(tmp_path / "tune")
    searcher = write_searcher(tmp_path / "tune", {"trials": 3})
    back_up(tmp_path / "tune")
    state = write_state(tmp_path / "tune", {**STATE, "runner_data": {"n": 2}})
    searcher.write_bytes(pickle.dumps({"trials": 4})[:-3])
    assert back_up(tmp_path / "tune") is None
    assert json.loads(backup_of(state).read_text()) == STATE


def test_cut_searcher_state_puts_the_whole_backup_save_in_place(tmp_path, caplog):
    # Rule: on --resume a cut searcher pickle (Ray would start the search again) is replaced by its
    # backup, and the experiment state by the backup of the same save, with one warning naming it.
    state = write_state(tmp_path / "tune")
    searcher = write_searcher(tmp_path / "tune", {"trials": 3})
    back_up(tmp_path / "tune")
    write_state(tmp_path / "tune", {**STATE, "runner_data": {"n": 2}})
    searcher.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        check_experiment(tmp_path / "tune")
    assert pickle.loads(searcher.read_bytes()) == {"trials": 3} and json.loads(state.read_text()) == STATE
    assert f"{searcher}: damaged searcher state (cut by a kill while it was saved); resuming from its backup" \
        in caplog.text


def test_cut_searcher_state_without_backup_is_one_error_naming_it(tmp_path):
    write_state(tmp_path / "tune")
    searcher = write_searcher(tmp_path / "tune", {"trials": 3})
    searcher.write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match=rf"{searcher}: damaged searcher state"):
        check_experiment(tmp_path / "tune")


def test_experiment_states_and_their_backups_are_told_from_searcher_states(tmp_path):
    # Rule: Ray's experiment state and its backup are read as JSON; the searcher's files as pickles.
    names = ["experiment_state-2026-11-27_10-00-00.json", "experiment_state-2026-11-27_10-00-00.json.bak",
             "searcher-state-2026-11-27_10-00-00.pkl", "search_gen_state-2026-11-27_10-00-00.json"]
    assert [is_experiment_state(tmp_path / n) for n in names] == [True, True, False, False]
