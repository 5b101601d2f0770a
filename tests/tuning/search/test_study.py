"""tuning/search/study.py: where a search's study is kept and read back (journal file, --storage, older study.db)."""
from __future__ import annotations

import json
import logging
import os
import sqlite3

import optuna
import pytest

from common.errors import InputError
from tuning.driver.preflight import check_journal
from common.secrets import masked, shown
from tuning.search.study import JOURNAL, SQLITE, check_url, journal_storage, load_study, open_storage, study_names


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


@pytest.mark.parametrize("url, expected", [
    ("postgresql://me:secret@db:5432/tune", "postgresql://me:***@db:5432/tune"),
    ("postgresql+psycopg2://me:secret@db/tune?sslmode=require", "postgresql+psycopg2://me:***@db/tune?sslmode=require"),
    ("postgresql://me@db/tune", "postgresql://me@db/tune"),  # no password: nothing to mask
    ("postgresql://db/tune", "postgresql://db/tune"),
    ("postgresql://:secret@db/tune", "postgresql://:***@db/tune"),  # a password without a user
    ("postgresql://user:pa/ss@host/db", "postgresql://user:***@host/db"),  # '/' in it: SQLAlchemy cannot parse it
    ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),  # '@': SQLAlchemy shows "***@ss@host"
    ("mysql://u:p#x?y@h:3306/db", "mysql://u:***@h:3306/db"),
    ("mysql+pymysql://u:p%40w@h/db?charset=utf8", "mysql+pymysql://u:***@h/db?charset=utf8"),
    ("postgresql://h/db?user=u&password=secret&sslmode=require",
     "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("u:secret@host/db", "u:***@host/db"),  # no scheme
    ("u:a://b@host/db", "u:***@host/db"),  # no scheme, '://' in the password
    ("sqlite:///study.db", "sqlite:///study.db"),
    ("sqlite:////abs/path/with:colon@at.db", "sqlite:////abs/path/with:colon@at.db"),  # a path, not a password
    ("not a url", "not a url"),
])
def test_shown_masks_the_password_whatever_the_shape(url, expected):
    # Rule: every message naming a --storage URL masks its password, parseable or not.
    assert shown(url) == expected


def test_masked_removes_the_url_and_its_password_from_a_drivers_message():
    # Rule: an error's own text (SQLAlchemy's, a driver's) may repeat the URL or the password: both go.
    url = "postgresql://u:p@ss/w%21rd@h/db"
    why = f"could not connect to {url}: password 'p@ss/w!rd' rejected; also mysql://x:other@h2/db"
    assert masked(why, url) == ("could not connect to postgresql://u:***@h/db: password '***' rejected; "
                                "also mysql://x:***@h2/db")


@pytest.mark.parametrize("url, why", [
    ("nosuch://u:s3cret@h/x", "Can't load plugin: sqlalchemy.dialects:nosuch"),
    ("postgresql+psycopg2://u:s3cr/et@127.0.0.1:1/db",
     "No module named 'psycopg2': install the database's Python driver"),
    ("mysql://u:s3c@ret@127.0.0.1:1/db", "No module named 'MySQLdb': install the database's Python driver"),
    ("u:s3cret@h/db", "Could not parse SQLAlchemy URL from given URL string"),
])
def test_check_url_that_does_not_open_is_one_masked_line(url, why):
    # Rule: a URL that cannot be opened (no such dialect, no driver, no scheme) is one line, password masked.
    with pytest.raises(InputError) as e:
        check_url(url, "n", resume=False, overwrite=False)
    assert str(e.value) == f"--storage {shown(url)}: cannot open it as an Optuna storage ({why})"
    assert "s3c" not in str(e.value) and "\n" not in str(e.value)


def test_check_url_refuses_an_unknown_database_kind(tmp_path):
    with pytest.raises(InputError, match=r"^--storage nosuch://h/x: cannot open it"):
        check_url("nosuch://h/x", "n", resume=False, overwrite=False)


def test_check_url_creates_no_database(tmp_path):
    # Rule: checking a sqlite URL whose file is missing creates nothing: it holds no study, and its
    # folder must be there to take it.
    url = f"sqlite:///{tmp_path / 'new.db'}"
    check_url(url, "n", resume=False, overwrite=False)
    with pytest.raises(InputError, match="holds no study named 'n'"):
        check_url(url, "n", resume=True, overwrite=False)
    with pytest.raises(InputError, match=rf"^--storage sqlite:///{tmp_path}/nodir/new.db: the folder "
                                         rf"{tmp_path}/nodir does not exist$"):
        check_url(f"sqlite:///{tmp_path / 'nodir' / 'new.db'}", "n", resume=False, overwrite=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["optuna", "other", "empty"])
def test_study_names_read_an_existing_database_without_changing_it(tmp_path, make):
    # Rule: an existing database is only read: Optuna's tables are not added to one that lacks them
    # (no tables: no study), and no file beside it appears.
    db = tmp_path / "s.db"
    if make == "optuna":
        make_study(f"sqlite:///{db}", "mine", 1)
    elif make == "other":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE notes (x TEXT)")
        con.commit()
        con.close()
    else:
        db.touch()
    os.utime(db, ns=(10**18, 10**18))
    before = db.read_bytes()
    assert study_names(f"sqlite:///{db}") == (["mine"] if make == "optuna" else [])
    assert db.read_bytes() == before and db.stat().st_mtime_ns == 10**18 and list(tmp_path.iterdir()) == [db]


def test_check_url_refuses_a_file_that_is_no_database(tmp_path):
    (tmp_path / "notes.db").write_text("hello " * 200)
    with pytest.raises(InputError, match=r"cannot open it as an Optuna storage \(\(sqlite3.DatabaseError\) file is "
                                         r"not a database\)$"):
        check_url(f"sqlite:///{tmp_path / 'notes.db'}", "n", resume=False, overwrite=False)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_check_url_refuses_an_in_memory_database(url):
    # Rule: each connection to it is a new, empty database: the study would be lost between the search's steps.
    with pytest.raises(InputError, match=r"an in-memory database loses the study"):
        check_url(url, "n", resume=False, overwrite=False)


def test_report_of_a_recorded_database_that_does_not_open_warns_masked(tmp_path, caplog):
    # Rule: tuning.report reads a study from the URL in search.json; where that database does not open
    # here it warns (password masked) and draws the rest, where --storage itself is one error.
    url = "postgresql://u:s3cr/et@127.0.0.1:1/db"
    (tmp_path / "search.json").write_text(json.dumps({"kind": "optuna", "search": {"storage": url}}))
    with caplog.at_level(logging.WARNING):
        assert load_study(tmp_path) is None
    assert "postgresql://u:***@127.0.0.1:1/db" in caplog.text and "s3cr" not in caplog.text
    with pytest.raises(InputError, match=r"^--storage postgresql://u:\*\*\*@127.0.0.1:1/db: cannot open"):
        load_study(tmp_path, url)


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
