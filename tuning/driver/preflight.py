"""Checks a search makes on its results folder before it creates, deletes or starts anything.

A mistyped name, a folder in use, a resume of the wrong kind or of damaged state each end in one
line naming the flag or file (exit 2) while the disk is still as it was.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from common.atomic import atomic_write
from common.folders import LOCK_FILE, SEARCH_MARKER, Claim, check_name, check_writable, clear, inspect, lock
from common.errors import InputError

from tuning.resume.checkpoints import STATE_FILE, histories, load_state
from tuning.driver.runner import SearchConfig, experiments
from tuning.resume.state_backup import (EXPERIMENT_STATE, SEARCH_STATES, SUFFIX, backup_of, cut_files, is_experiment_state,
                                        newest)

log = logging.getLogger(__name__)


def results_folder(results_dir: str, name: str) -> Path:
    """<results-dir>/<name>, with the name checked and the results dir known to be writable."""
    check_name(name)
    check_writable(Path(results_dir), "--results-dir", results_dir)
    return Path(results_dir) / name


def check_target(out: Path, kind: str, resume: bool, overwrite: bool) -> str:
    """What the folder holds ('new' or 'ours'), or the one-line reason this run may not use it."""
    state = inspect(out, SEARCH_MARKER)
    if state == "foreign":
        raise InputError(f"--name {out.name}: {out} holds files that digit-tune did not write (no {SEARCH_MARKER}); "
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
        info = json.loads((out / SEARCH_MARKER).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{out / SEARCH_MARKER}: damaged ({' '.join(str(e).split())}); "
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


def check_experiment(path: Path, restore: bool = True) -> None:
    """Ray's newest experiment and searcher states must load: Ray would otherwise start the search again.

    Files cut by a kill mid-copy are replaced, with the others, by the last whole backup
    (tuning/resume/state_backup.py), which is one consistent save. `restore=False` only checks that there is
    one: a search checks before it loads the data, and restores once nothing can refuse it any more.
    """
    cut = cut_files(path)
    if not cut:
        return
    what = lambda f: "experiment state" if is_experiment_state(f) else "searcher state"  # noqa: E731
    for f in cut:
        if backup_of(f) is None:
            raise InputError(f"{f}: damaged {what(f)} (cut by a kill while it was saved, and no whole backup); "
                             "its finished trials are in the trial folders beside it, but --resume cannot "
                             "continue from it: start again with --overwrite")
    if not restore:
        return
    for f in cut:
        log.warning("%s: damaged %s (cut by a kill while it was saved); resuming from its backup %s, saved up "
                    "to a second earlier: a trial that finished in that second runs again", f, what(f),
                    f.name + SUFFIX)
    for p in (EXPERIMENT_STATE, *SEARCH_STATES):
        f = newest(path, p)
        backup = backup_of(f) if f is not None else None
        if backup is not None:
            atomic_write(f, lambda tmp, b=backup: shutil.copyfile(b, tmp))


@dataclass
class Untouched:
    """A results folder as it was before a search locked it, put back when the search is then refused.

    lock() makes the folder (and any missing folder above it) and writes its pid into `.lock`, before
    the data is loaded, so that a second run is refused at once; a refusal after that must still
    leave the disk as it was: bytes and modification times.
    """

    folder: Path
    anchor: Path  # the folder itself where it exists, else its nearest existing ancestor
    anchor_ns: tuple[int, int] | None
    made: list[Path]  # folders lock() would create, deepest first
    lock_bytes: bytes | None  # None: there was no .lock
    lock_ns: tuple[int, int] | None

    @classmethod
    def of(cls, folder: Path) -> "Untouched":
        made, anchor = [], folder
        while not anchor.exists() and anchor.parent != anchor:
            made.append(anchor)
            anchor = anchor.parent
        lock_file = folder / LOCK_FILE
        try:
            st = lock_file.stat()
            lock_bytes, lock_ns = lock_file.read_bytes(), (st.st_atime_ns, st.st_mtime_ns)
        except OSError:  # none (or not readable: lock() will fail and change nothing)
            lock_bytes, lock_ns = None, None
        try:
            st = anchor.stat()
            anchor_ns = (st.st_atime_ns, st.st_mtime_ns)
        except OSError:
            anchor_ns = None
        return cls(folder, anchor, anchor_ns, made, lock_bytes, lock_ns)

    def restore(self) -> None:
        """Put back the lock file and remove the folders lock() made; never raises (a refusal is on its way)."""
        lock_file = self.folder / LOCK_FILE
        try:
            if self.lock_bytes is None:
                lock_file.unlink(missing_ok=True)
            else:
                lock_file.write_bytes(self.lock_bytes)
                os.utime(lock_file, ns=self.lock_ns)
            for d in self.made:
                d.rmdir()
            if self.anchor_ns is not None:
                os.utime(self.anchor, ns=self.anchor_ns)
        except OSError as e:
            log.warning("%s: could not put it back as it was (%s)", self.folder, e)


def check_journal(path: Path) -> None:
    """study.log must hold a study in whole lines before a resume appends to it (a line cut by a
    kill in the middle of a write would join the next one into garbage)."""
    try:
        data = path.read_bytes()
        lines = data.splitlines()
        if not data.endswith(b"\n"):
            raise ValueError("its last line is cut" if data else "0 bytes")
        ops = [json.loads(line)["op_code"] for line in lines]
        if 0 not in ops:  # Optuna's CREATE_STUDY
            raise ValueError("no study in it")
    except FileNotFoundError:
        raise InputError(f"--resume: {path} is missing; the Optuna study cannot continue") from None
    except (ValueError, KeyError, TypeError) as e:
        why = str(e) if type(e) is ValueError else "a line is not an Optuna journal record"
        raise InputError(f"{path}: damaged Optuna study ({why}); --resume cannot continue it: start again "
                         "with --overwrite") from None


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
    """Trials' newest checkpoints that do not load (a truncated copy): those trials continue from an
    earlier whole checkpoint, or from epoch 0."""
    bad = []
    for trial in sorted(p for p in path.iterdir() if p.is_dir()):
        found = histories(trial)
        state = found[0][1] / STATE_FILE if found else None
        if state is not None and state.exists() and load_state(state) is None:  # (no file: pruned, tuning/resume/pruning.py)
            bad.append(state)
    return bad


def claim_folder(cfg: SearchConfig, kind: str, out: Path, load: Callable[[], Any],
                 check: Callable[[Any, Path], None] | None,
                 start: Callable[[], None] | None = None) -> tuple[Claim, list[Path], Any]:
    """Check the folder and any state a resume needs, load the data, `start` (Ray), then lock (and
    clear) the folder.

    Returns the claim, the earlier Ray experiments (on --resume) and what `load` returned. Nothing is
    created or deleted before every check has passed, the data is loaded and Ray has started (a
    cluster without the GPUs asked for is refused with the folder as it was).
    """
    before = Untouched.of(out)  # what a refusal puts back: lock() makes the folder and writes .lock
    # an existing folder of ours is locked first, so a concurrent run is refused at once
    held = lock(out) if out.is_dir() and not out.is_symlink() and inspect(out, SEARCH_MARKER) != "foreign" else None
    try:
        check_target(out, kind, cfg.resume, cfg.overwrite)
        if cfg.storage_path:
            check_storage(Path(cfg.storage_path).expanduser(), out, cfg.overwrite)
        earlier = experiments(cfg, out) if cfg.resume else []
        if cfg.resume:
            if not earlier:
                raise InputError(f"--resume: nothing to resume in {out} (no interrupted search of that --name)")
            check_experiment(earlier[-1], restore=False)  # backups go in place once nothing can refuse
            for f in damaged_checkpoints(earlier[-1]):
                log.warning("%s: damaged checkpoint; that trial continues from an earlier one, or from epoch 0", f)
        if check is not None:
            check(cfg, out)
        loaded = load()
        if start is not None:
            start()
        if held is None:
            held = lock(out)
        fresh = check_target(out, kind, cfg.resume, cfg.overwrite) == "new"  # again, now that it is ours
        if earlier:
            check_experiment(earlier[-1])  # cut state files: their backups go in place now
    except BaseException:
        if held is not None:
            before.restore()  # while still locked
            held.close()
        raise
    if cfg.overwrite and not fresh:
        clear(out)
    return Claim(out, fresh or cfg.overwrite, held), earlier, loaded
