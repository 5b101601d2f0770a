"""tuning/study.py: where a search's study is kept and read back (journal file, --storage, older study.db)."""
from __future__ import annotations

import json

import optuna
import pytest

from common.errors import InputError
from tuning.preflight import check_journal
from tuning.study import JOURNAL, SQLITE, check_url, journal_storage, load_study, open_storage, shown


def make_study(storage, name: str, trials: int = 2) -> None:
    study = optuna.create_study(study_name=name, storage=storage)
    for k in range(trials):
        study.add_trial(optuna.trial.create_trial(params={"x": float(k)},
                                                  distributions={"x": optuna.distributions.FloatDistribution(0, 9)},
                                                  value=float(k)))


def test_load_study_reads_the_journal_file_by_the_folder_name(tmp_path):
    (tmp_path / "s").mkdir()
    make_study(journal_storage(tmp_path / "s" / JOURNAL), "s", 3)
    study = load_study(tmp_path / "s")
    assert study.study_name == "s" and [t.params["x"] for t in study.trials] == [0.0, 1.0, 2.0]


def test_load_study_reads_an_older_searchs_sqlite_file(tmp_path):
    make_study(f"sqlite:///{tmp_path / SQLITE}", tmp_path.name, 2)
    assert len(load_study(tmp_path).trials) == 2


def test_load_study_follows_the_storage_url_recorded_in_search_json(tmp_path):
    # Rule: a search run with --storage is read back from that database, by its folder's name.
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    make_study(url, "other", 1)
    make_study(url, "mine", 4)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps({"kind": "optuna", "search": {"storage": url}}))
    assert len(load_study(folder).trials) == 4 and not (folder / JOURNAL).exists()


def test_no_study_yet_is_none(tmp_path):
    assert open_storage(tmp_path) is None and load_study(tmp_path) is None


def test_shown_masks_the_password():
    assert shown("postgresql://me:secret@db:5432/tune") == "postgresql://me:***@db:5432/tune"


def test_check_url_refuses_an_unknown_database_kind(tmp_path):
    with pytest.raises(InputError, match=r"^--storage nosuch://h/x: cannot open it"):
        check_url("nosuch://h/x", "n", resume=False, overwrite=False)


def test_check_url_refuses_a_second_study_of_the_same_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    make_study(url, "n", 1)
    with pytest.raises(InputError, match="already holds a study named 'n'"):
        check_url(url, "n", resume=False, overwrite=False)
    check_url(url, "n", resume=True, overwrite=False)  # continuing it is what --resume is for
    check_url(url, "n", resume=False, overwrite=True)


def test_check_url_refuses_resume_without_the_study(tmp_path):
    with pytest.raises(InputError, match="holds no study named 'n'"):
        check_url(f"sqlite:///{tmp_path / 'empty.db'}", "n", resume=True, overwrite=False)


@pytest.mark.parametrize("damage, why", [
    (lambda b: b[:-5], "last line is cut"),
    (lambda b: b"", "0 bytes"),
    (lambda b: b"not json\n" + b, "not an Optuna journal record"),
    (lambda b: b"\n".join(line for line in b.splitlines() if b'"op_code":0' not in line) + b"\n", "no study in it"),
])
def test_check_journal_names_the_damage(tmp_path, damage, why):
    path = tmp_path / JOURNAL
    make_study(journal_storage(path), "s", 3)
    check_journal(path)  # whole: no error
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InputError, match=f"{path}: damaged Optuna study .*{why}"):
        check_journal(path)
