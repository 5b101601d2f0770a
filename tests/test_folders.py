"""Results folders: a --name stays inside --results-dir, --overwrite deletes only what this tool made
and only after every check, a folder in use is refused, a resume of the wrong kind is refused.

Each CLI case snapshots the whole tmp_path tree before and after: a refused command changes nothing.
"""
from __future__ import annotations

import json

import pytest

from common.folders import LOCK_FILE, check_name, clear, inspect, lock
from common.errors import InputError
from tests.conftest import call_cli, one_error, tree

NAME_RULE = "use one folder name of letters, digits, '-', '_' and '.' (not '.' or '..', no '/')"


@pytest.mark.parametrize("name", ["..", ".", "/abs/path", "a/b", "../x", "", "a\\b", "x y"])
def test_bad_names_are_refused(name):
    # Rule: a name is one path component of [A-Za-z0-9._-], not '.' or '..'.
    with pytest.raises(InputError) as e:
        check_name(name)
    assert str(e.value) == f"--name {name!r}: {NAME_RULE}"


@pytest.mark.parametrize("name", ["grid", "run-2.1_b", "...x"])
def test_good_names_pass(name):
    # Rule: letters, digits, '-', '_' and '.' make a valid name.
    assert check_name(name) == name


def test_inspect_tells_new_ours_and_foreign(tmp_path):
    # Rule: absent or empty (bar the lock) is 'new', a marker makes it 'ours', anything else 'foreign'.
    assert inspect(tmp_path / "absent", "search.json") == "new"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / LOCK_FILE).write_text("1\n")
    assert inspect(tmp_path / "empty", "search.json") == "new"
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "search.json").write_text("{}")
    assert inspect(tmp_path / "ours", "search.json") == "ours"
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    assert inspect(tmp_path / "foreign", "search.json") == "foreign"


def test_clear_keeps_the_folder_and_its_lock(tmp_path):
    # Rule: clearing deletes the folder's contents only; the folder and its held lock stay.
    held = lock(tmp_path / "s")
    (tmp_path / "s" / "tune" / "t1").mkdir(parents=True)
    (tmp_path / "s" / "search.json").write_text("{}")
    clear(tmp_path / "s")
    assert tree(tmp_path) == ["s", f"s/{LOCK_FILE}"]
    held.close()


def test_second_lock_names_the_holder(tmp_path):
    # Rule: a folder locked by one run is refused to the next, naming the holder's pid.
    import os

    held = lock(tmp_path / "s")
    with pytest.raises(InputError) as e:
        lock(tmp_path / "s")
    assert str(e.value) == f"--name s: {tmp_path / 's'} is in use by pid {os.getpid()}"
    held.close()
    lock(tmp_path / "s").close()  # free again once released


def clone(tmp_path):
    """A stand-in for a user's checkout: files beside results/, which a bad --name must not touch."""
    work = tmp_path / "clone"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "README.md").write_text("readme")
    old = work / "results" / "other"
    old.mkdir(parents=True)
    (old / "search.json").write_text(json.dumps({"kind": "grid"}))
    return work


@pytest.mark.parametrize("module", ["tuning.grid", "tuning.optuna"])
@pytest.mark.parametrize("name", ["..", ".", "/tmp", "../x", "a/b"])
def test_overwrite_with_an_escaping_name_deletes_nothing(tmp_path, module, name):
    # Rule: --name .. / . / an absolute path / a nested path is one error line; nothing is deleted or made.
    work = clone(tmp_path)
    before = tree(tmp_path)
    r = call_cli(module, "--name", name, "--overwrite", cwd=work)
    assert one_error(r) == f"--name {name!r}: {NAME_RULE}"
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", ["../x", "a/b", ".."])
def test_model_train_name_stays_inside(tmp_path, name):
    # Rule: model.train --name follows the same rule: no folder outside results/runs/.
    work = clone(tmp_path)
    before = tree(tmp_path)
    r = call_cli("model.train", "--name", name, "--epochs", "1", cwd=work)
    assert one_error(r) == f"--name {name!r}: {NAME_RULE}"
    assert tree(tmp_path) == before


def test_overwrite_refuses_a_folder_it_did_not_make(tmp_path):
    # Rule: --overwrite deletes only a folder holding search.json; a user's folder is kept as it is.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    before = tree(tmp_path)
    r = call_cli("tuning.grid", "--name", "mine", "--overwrite", "--results-dir", str(tmp_path))
    assert one_error(r) == (f"--name mine: {tmp_path / 'mine'} holds files that digit-tune did not write (no "
                            "search.json); pick another --name (--overwrite deletes only folders it made)")
    assert tree(tmp_path) == before and (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


def test_overwrite_deletes_nothing_when_the_data_is_bad(tmp_path):
    # Rule: the deletion comes after every input is checked: a bad --data-dir leaves the old search.
    old = tmp_path / "grid"
    old.mkdir()
    (old / "search.json").write_text(json.dumps({"kind": "grid"}))
    (old / "trials.csv").write_text("trial_id\nx\n")
    before = tree(tmp_path, skip=old / LOCK_FILE)
    r = call_cli("tuning.grid", "--overwrite", "--data-dir", str(tmp_path / "nope"), "--results-dir", str(tmp_path))
    assert str(tmp_path / "nope") in one_error(r)
    assert tree(tmp_path, skip=old / LOCK_FILE) == before and (old / "trials.csv").read_text() == "trial_id\nx\n"


def test_name_that_is_a_file(tmp_path):
    # Rule: results/<name> being a file is one error line, not a traceback, and the file stays.
    (tmp_path / "g").write_text("not a folder")
    r = call_cli("tuning.grid", "--name", "g", "--results-dir", str(tmp_path))
    assert one_error(r) == f"{tmp_path / 'g'}: exists and is a file, not a results folder"
    assert (tmp_path / "g").read_text() == "not a folder"


def test_results_dir_that_is_a_file(tmp_path):
    # Rule: a --results-dir that is a file is named in one line (grid and model.train alike).
    (tmp_path / "f").write_text("x")
    for module in ("tuning.grid", "model.train"):
        r = call_cli(module, "--results-dir", str(tmp_path / "f"))
        assert one_error(r) == f"--results-dir {tmp_path / 'f'}: is a file, not a folder"
    assert tree(tmp_path) == ["f"]


def test_overwrite_never_deletes_storage_path(tmp_path):
    # Rule: --storage-path is never deleted; an --overwrite that would reuse its old experiments is refused.
    old = tmp_path / "r" / "grid"
    old.mkdir(parents=True)
    (old / "search.json").write_text(json.dumps({"kind": "grid"}))
    (tmp_path / "shared" / "tune" / "trial_1").mkdir(parents=True)
    before = tree(tmp_path, skip=old / LOCK_FILE)
    r = call_cli("tuning.grid", "--overwrite", "--results-dir", str(tmp_path / "r"),
                "--storage-path", str(tmp_path / "shared"))
    assert one_error(r).startswith(f"--storage-path {tmp_path / 'shared'}: holds tune of an earlier search")
    assert tree(tmp_path, skip=old / LOCK_FILE) == before


def test_mistyped_resume_leaves_nothing(tmp_path):
    # Rule: --resume of a name that never ran is refused and creates no folder.
    r = call_cli("tuning.grid", "--resume", "--name", "typo", "--results-dir", str(tmp_path))
    assert one_error(r) == f"--resume: nothing to resume in {tmp_path / 'typo'} (no interrupted search of that --name)"
    assert tree(tmp_path) == []


def test_optuna_resume_of_a_grid_folder(tmp_path):
    # Rule: tuning.optuna --resume on a grid search's folder is refused, naming the right command.
    old = tmp_path / "g"
    (old / "tune").mkdir(parents=True)
    (old / "search.json").write_text(json.dumps({"kind": "grid", "state": "interrupted"}))
    before = tree(tmp_path, skip=old / LOCK_FILE)
    r = call_cli("tuning.optuna", "--resume", "--name", "g", "--results-dir", str(tmp_path))
    assert one_error(r) == f"--resume: {old} holds a grid search; resume it with tuning.grid"
    assert tree(tmp_path, skip=old / LOCK_FILE) == before


def test_searched_epochs_is_refused(tmp_path):
    # Rule: a space that searches epochs (ASHA's max_t) is one error line before anything starts.
    from tests.conftest import write_space

    space = write_space(tmp_path / "s.yaml", {"epochs": {"values": [1, 100000]}})
    r = call_cli("tuning.grid", "--space", str(space), "--epochs", "1", "--results-dir", str(tmp_path / "r"))
    assert "epochs cannot be searched" in one_error(r)
    assert not (tmp_path / "r").exists()
