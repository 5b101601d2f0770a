"""Results folders that are safe to name, share and replace.

Every CLI writes into one folder, `<results-dir>/<name>`; these rules keep it there:
- a name is one path component (letters, digits, `-`, `_`, `.`; not `.` or `..`), so no flag can
  point a command outside its results dir;
- a run holds an exclusive `flock` on `<folder>/.lock` for its whole life, so two runs with one
  name cannot interleave (the second is refused at once, naming the first one's pid);
- `--overwrite` deletes only a folder this tool made (it holds the kind's marker file), only its
  contents (never the results dir or anything above it), and only once every input is checked.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from common.errors import InputError

log = logging.getLogger(__name__)
NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
LOCK_FILE = ".lock"
SEARCH_MARKER = "search.json"  # written first by every search: a folder holding it is one this tool made
STATE_RUNNING, STATE_INTERRUPTED, STATE_FINISHED = "running", "interrupted", "finished"  # its `state`


def check_name(name: str, flag: str = "--name") -> str:
    """A folder name that stays inside its results dir: one component, no `.`/`..`."""
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(f"{flag} {name!r}: use one folder name of letters, digits, '-', '_' and '.' "
                         "(not '.' or '..', no '/')")
    return name


def check_writable(folder: Path, flag: str, value: str | None = None) -> None:
    """Fail in one line, before anything is created, when `folder` cannot be made and written.

    Walks up to the nearest existing ancestor: it must be a folder this process may write in.
    `value` is the flag's value as given (default: `folder`).
    """
    given = Path(value) if value is not None else folder
    existing = folder
    while not existing.exists() and existing.parent != existing:  # exists() is False under a file, too
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == given else f"{existing} "
        raise InputError(f"{flag} {given}: {where}is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {given}: {existing} is not writable")


@dataclass
class Claim:
    """A results folder this process holds the lock of; `fresh` when nothing was in it before."""

    path: Path
    fresh: bool
    lock: IO | None = field(default=None, repr=False)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def inspect(folder: Path, marker: str) -> str:
    """'new' (absent or empty), 'ours' (holds `marker`), or 'foreign'; a file there is an error."""
    if folder.is_symlink():
        raise InputError(f"{folder}: is a link; give a name of a real folder")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is a file, not a results folder")
    if not folder.exists():
        return "new"
    entries = [p for p in folder.iterdir() if p.name != LOCK_FILE]
    if not entries:
        return "new"
    return "ours" if (folder / marker).is_file() else "foreign"


def lock(folder: Path, flag: str = "--name") -> IO:
    """Take the folder's exclusive lock, or fail at once naming the process that holds it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / LOCK_FILE, "a+")
    except OSError as e:
        raise InputError(f"{flag} {folder.name}: cannot create {folder} ({e.strerror})") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise InputError(f"{flag} {folder.name}: {folder} is in use by pid {pid}") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def clear(folder: Path) -> None:
    """Delete what is inside `folder` (it must be a real folder); the lock file stays, held."""
    for p in folder.iterdir():
        if p.name == LOCK_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    log.info("cleared %s for --overwrite", folder)
