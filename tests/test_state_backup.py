"""tuning/state_backup.py and its use in preflight.check_experiment: resuming past a state cut mid-save."""
from __future__ import annotations

import json
import logging

import pytest

from common.errors import InputError
from tuning.preflight import check_experiment
from tuning.state_backup import back_up, backup_of

STATE = {"trial_data": [["t1", "done"]], "runner_data": {"n": 1}}


def write_state(folder, obj=STATE, name="experiment_state-2026-11-27_10-00-00.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(obj))
    return folder / name


def test_back_up_copies_a_whole_state(tmp_path):
    # Rule: the newest state that parses is copied byte for byte to <name>.bak.
    state = write_state(tmp_path / "tune")
    bak = back_up(tmp_path / "tune")
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
