"""Refused means untouched: a command that refuses its input (exit 2, one line) leaves every path as it
was, bytes and modification times: no --results-dir, --storage-path or results/<name>/ folder, no
study.log or --storage database (nor Optuna's tables in one), no rewritten .lock, no repaired state file.

Each command runs through its real CLI (in this process: all of them stop before Ray starts).
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import call_cli, one_error

OLD_NS = 1_600_000_000_000_000_000  # a modification time no command run now could leave


def snapshot(root: Path) -> dict[str, tuple[bool, bytes | None, int]]:
    """Every path under root, root included: (is a folder, bytes, modification time in ns)."""
    return {str(p.relative_to(root)): (p.is_dir(), None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
            for p in [root, *sorted(root.rglob("*"))]}


def aged(*paths: Path) -> None:
    """Set an old modification time on `paths`, so a rewrite within the same clock tick still shows."""
    for p in paths:
        os.utime(p, ns=(OLD_NS, OLD_NS))


def bad_csv(tmp: Path) -> Path:
    """A CSV without its label column: refused when the data is loaded, after every other check."""
    path = tmp / "data" / "nolabel.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("p0,p1,p2,p3\n" + "1,2,3,4\n" * 20)
    return path


def bad_images(tmp: Path) -> Path:
    """An image folder with a file that is not an image."""
    from PIL import Image

    root = tmp / "data" / "shapes"
    for k, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * (k + i)).save(root / cls / f"{i}.png")
    (root / "a" / "notes.txt").write_text("not a picture")
    return root


def ours(folder: Path, kind: str = "grid") -> Path:
    """A results folder an earlier search made: search.json and the .lock holding an old pid."""
    folder.mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({"kind": kind, "state": "interrupted", "search": {}}))
    (folder / ".lock").write_text("12345\n")
    (folder / "trials.csv").write_text("trial_id\nx\n")
    return folder


def optuna_db(path: Path, name: str) -> Path:
    import optuna

    optuna.create_study(study_name=name, storage=f"sqlite:///{path}")
    return path


def other_db(path: Path) -> Path:
    """A SQLite file of another program: checking it must not add Optuna's tables."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (x TEXT)")
    con.commit()
    con.close()
    return path


def empty_db(path: Path) -> Path:
    """A file of 0 bytes: SQLite reads it as a database without tables."""
    path.touch()
    return path


def interrupted_optuna(folder: Path) -> Path:
    """An interrupted Optuna search whose experiment state was cut by a kill (a whole backup beside it):
    --resume would put the backup in place, but only once nothing can refuse it any more."""
    import optuna

    from tuning.search.study import JOURNAL, journal_storage

    ours(folder, "optuna")
    optuna.create_study(study_name=folder.name, storage=journal_storage(folder / JOURNAL))
    tune = folder / "tune"
    tune.mkdir()
    state = tune / "experiment_state-2026-12-01_10-00-00.json"
    (tune / (state.name + ".bak")).write_text(json.dumps({"trial_data": [], "runner_data": {}}))
    state.write_text('{"trial_da')
    return folder


def setup_storage(tmp: Path) -> list[str]:
    """A new sqlite --storage and data that is refused once it is read, after the storage's check."""
    return ["--storage", f"sqlite:///{tmp / 'new.db'}", "--train-csv", str(bad_csv(tmp))]


# (id, module, setup(tmp, results) -> arguments, what the one line says)
CASES: list[tuple[str, str, Callable[[Path, Path], list[str]], str]] = [
    ("optuna new sqlite, CSV without label", "tuning.optuna",
     lambda t, r: setup_storage(t), "label"),
    ("optuna new sqlite, not an image", "tuning.optuna",
     lambda t, r: ["--storage", f"sqlite:///{t / 'new.db'}", "--image-dir", str(bad_images(t))], "notes.txt"),
    ("optuna sqlite of another program", "tuning.optuna",
     lambda t, r: ["--storage", f"sqlite:///{other_db(t / 'other.db')}", "--train-csv", str(bad_csv(t))], "label"),
    ("optuna empty sqlite file", "tuning.optuna",
     lambda t, r: ["--storage", f"sqlite:///{empty_db(t / 'empty.db')}", "--train-csv", str(bad_csv(t))], "label"),
    ("optuna sqlite holding the study", "tuning.optuna",
     lambda t, r: ["--storage", f"sqlite:///{optuna_db(t / 'old.db', 'optuna')}"],
     "already holds a study named 'optuna'"),
    ("optuna --resume, new sqlite without the study", "tuning.optuna",
     lambda t, r: interrupted_optuna(r / "o") and [*setup_storage(t), "--name", "o", "--resume"],
     "holds no study named 'o'"),
    ("optuna storage folder missing", "tuning.optuna",
     lambda t, r: ["--storage", f"sqlite:///{t / 'nodir' / 'new.db'}"], "does not exist"),
    ("grid --storage-path and deep --results-dir, bad CSV", "tuning.grid",
     lambda t, r: ["--storage-path", str(t / "shared" / "ray"), "--train-csv", str(bad_csv(t)),
                   "--results-dir", str(r / "deep" / "er")], "label"),
    ("grid same name again", "tuning.grid",
     lambda t, r: ours(r / "grid") and [], "already holds a search"),
    ("grid same name again, --storage-path", "tuning.grid",
     lambda t, r: ours(r / "grid") and ["--storage-path", str(t / "shared")], "already holds a search"),
    ("grid into an empty folder, bad CSV", "tuning.grid",
     lambda t, r: (r / "grid").mkdir() or ["--train-csv", str(bad_csv(t))], "label"),
    ("grid --overwrite, bad CSV", "tuning.grid",
     lambda t, r: ours(r / "grid") and ["--overwrite", "--train-csv", str(bad_csv(t))], "label"),
    ("optuna --resume of a cut state, bad CSV", "tuning.optuna",
     lambda t, r: interrupted_optuna(r / "o") and ["--name", "o", "--resume", "--train-csv", str(bad_csv(t))],
     "label"),
    ("optuna --resume of a grid", "tuning.optuna",
     lambda t, r: ours(r / "g") and ["--name", "g", "--resume"], "holds a grid search"),
    ("model.train, bad CSV", "model.train",
     lambda t, r: ["--train-csv", str(bad_csv(t))], "label"),
    ("model.train, not an image", "model.train",
     lambda t, r: ["--image-dir", str(bad_images(t)), "--name", "n"], "notes.txt"),
    ("data, not an image", "data",
     lambda t, r: ["--image-dir", str(bad_images(t))], "notes.txt"),
    ("report of a missing folder", "tuning.report",
     lambda t, r: [str(r / "missing")], "missing"),
    ("report of an empty folder", "tuning.report",
     lambda t, r: (r / "empty").mkdir() or [str(r / "empty")], "empty"),
]


@pytest.mark.parametrize("module, make, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_refused_command_leaves_every_path_as_it_was(tmp_path, module, make, needle):
    # Rule: refused means untouched: exit 2, one line, and every path under tmp_path (the results dir,
    # the data, any --storage database and --storage-path) keeps its bytes and modification time.
    results = tmp_path / "results"
    results.mkdir()
    args = make(tmp_path, results)
    if module != "tuning.report" and "--results-dir" not in args:
        args = [*args, "--results-dir", str(results)]
    aged(*[p for p in sorted(tmp_path.rglob("*"), reverse=True)], tmp_path)
    before = snapshot(tmp_path)
    r = call_cli(module, *args)
    assert needle in one_error(r)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("url", ["postgresql://u:s3cr/et@127.0.0.1:1/db", "postgresql://u:s3cr@et@127.0.0.1:1/db",
                                 "mysql://u:s3cr#et@127.0.0.1:1/db", "u:s3cr?et@127.0.0.1/db"])
def test_a_storage_password_never_reaches_the_terminal(tmp_path, url):
    # Rule: secrets stay masked: whatever the URL's shape (here: no driver installed, or no scheme at
    # all), the refusal is one line naming --storage with the password masked, and nothing is created.
    before = snapshot(tmp_path)
    r = call_cli("tuning.optuna", "--storage", url, "--results-dir", str(tmp_path / "results"))
    line = one_error(r)
    assert line.startswith("--storage ") and ":***@" in line
    assert "s3cr" not in r.stdout + r.stderr and "et@" not in r.stdout + r.stderr
    assert snapshot(tmp_path) == before
