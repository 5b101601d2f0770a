"""Checks a search makes on its results folder before it creates, deletes or starts anything.

A mistyped name, a folder in use, a resume of the wrong kind or of damaged state each end in one
line naming the flag or file (exit 2) while the disk is still as it was.
"""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

from common.atomic import atomic_write
from common.folders import check_name, check_writable, inspect
from common.errors import InputError

from tuning.state_backup import backup_of, newest_state

log = logging.getLogger(__name__)
MARKER = "search.json"  # written first by every search: a folder holding it is one this tool made
STATE_RUNNING, STATE_INTERRUPTED, STATE_FINISHED = "running", "interrupted", "finished"
STATE_FILE = "state.pt"  # a trial's checkpoint inside Ray's checkpoint_NNNNNN/ folders


def results_folder(results_dir: str, name: str) -> Path:
    """<results-dir>/<name>, with the name checked and the results dir known to be writable."""
    check_name(name)
    check_writable(Path(results_dir), "--results-dir", results_dir)
    return Path(results_dir) / name


def check_target(out: Path, kind: str, resume: bool, overwrite: bool) -> str:
    """What the folder holds ('new' or 'ours'), or the one-line reason this run may not use it."""
    state = inspect(out, MARKER)
    if state == "foreign":
        raise InputError(f"--name {out.name}: {out} holds files that digit-tune did not write (no {MARKER}); "
                         "pick another --name" + (" (--overwrite deletes only folders it made)" if overwrite else ""))
    if resume:
        if state == "new":
            raise InputError(f"--resume: nothing to resume in {out} (no interrupted search of that --name)")
        held = stored_kind(out)
        if held and held != kind:
            raise InputError(f"--resume: {out} holds a {held} search; resume it with tuning.{held}")
    elif state == "ours" and not overwrite:
        raise InputError(f"--name {out.name}: {out} already holds a search; add --resume to continue it "
                         f"or --overwrite to replace it")
    return state


def stored_kind(out: Path) -> str | None:
    try:
        info = json.loads((out / MARKER).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{out / MARKER}: damaged ({' '.join(str(e).split())}); "
                         "resume needs it: start again with --overwrite") from None
    return info.get("kind") if isinstance(info, dict) else None


def check_storage(storage: Path, out: Path, overwrite: bool) -> None:
    """--storage-path is never deleted: an --overwrite that would mix old experiments in is refused."""
    check_writable(storage, "--storage-path")
    if overwrite and storage.resolve() != out.resolve():
        old = sorted(p.name for p in storage.glob("tune*") if p.is_dir()) if storage.is_dir() else []
        if old:
            raise InputError(f"--storage-path {storage}: holds {', '.join(old)} of an earlier search, which "
                             "--overwrite never deletes; remove them yourself or pick another --storage-path")


def check_experiment(path: Path) -> None:
    """The newest Ray experiment state must parse: Ray would otherwise rerun the search from scratch.

    A state cut by a kill mid-save is replaced by its last whole backup (tuning/state_backup.py).
    """
    state = newest_state(path)  # (Ray's basic-variant-state-*.json is a pickle)
    if state is None:
        return
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as e:
        backup = backup_of(state)
        if backup is None:
            raise InputError(f"{state}: damaged experiment state ({' '.join(str(e).split())[:120]}); "
                             "its finished trials are in trials.csv and the trial folders beside it, but "
                             "--resume cannot continue from it: start again with --overwrite") from None
        log.warning("%s: damaged experiment state (cut by a kill while it was saved); resuming from its "
                    "backup %s, saved up to a second earlier: a trial that finished in that second runs again",
                    state, backup.name)
        atomic_write(state, lambda tmp: shutil.copyfile(backup, tmp))


def check_study_db(db: Path) -> None:
    """study.db must be a sound SQLite file holding a study before a resume writes to it."""
    try:
        if db.stat().st_size == 0:
            raise sqlite3.DatabaseError("0 bytes")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            names = con.execute("SELECT count(*) FROM studies").fetchone()[0]
        finally:
            con.close()
        if ok != "ok" or names == 0:
            raise sqlite3.DatabaseError(ok if ok != "ok" else "no study in it")
    except FileNotFoundError:
        raise InputError(f"--resume: {db} is missing; the Optuna study cannot continue") from None
    except sqlite3.Error as e:
        raise InputError(f"{db}: damaged Optuna study ({e}); --resume cannot continue it: start again "
                         "with --overwrite") from None


def damaged_checkpoints(path: Path) -> list[Path]:
    """Trial checkpoints that do not load (a truncated copy): those trials restart from epoch 0."""
    import torch

    bad = []
    for trial in sorted(p for p in path.iterdir() if p.is_dir()):
        saved = sorted(trial.glob(f"checkpoint_*/{STATE_FILE}"))
        if not saved:
            continue
        f = saved[-1]  # the one a resumed trial starts from
        try:
            torch.load(f, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 — any failure to load means the trial cannot continue from it
            bad.append(f)
    return bad
