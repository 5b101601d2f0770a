"""A last good copy of Ray's experiment state, so a driver killed mid-save can still be resumed.

Ray rewrites experiment_state-<session>.json in place, and copies it into the storage folder in
place too. A SIGKILL during either leaves a cut file from which Tune cannot restore. While the
search runs, `back_up` copies the newest state that parses to `<file>.bak` (write-then-rename,
at most once a second); on --resume, preflight.check_experiment falls back on that copy. Ray's
restore looks for `experiment_state-*.json` only, so it never reads the backup by itself.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from common.atomic import atomic_write

SUFFIX = ".bak"


def newest_state(experiment: Path) -> Path | None:
    """The experiment's newest state file (names carry the session's timestamp), or None."""
    files = sorted(Path(experiment).glob("experiment_state-*.json"))
    return files[-1] if files else None


def parses(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
        return True
    except (OSError, ValueError):
        return False


def back_up(experiment: Path) -> Path | None:
    """Copy the newest state to its backup when it is whole; None when there was nothing whole to copy."""
    state = newest_state(experiment)
    if state is None or not parses(state):  # not written yet, or a copy is in flight
        return None
    return atomic_write(state.with_name(state.name + SUFFIX), lambda tmp: shutil.copyfile(state, tmp))


def backup_of(state: Path) -> Path | None:
    """The whole backup of a state file, or None."""
    bak = state.with_name(state.name + SUFFIX)
    return bak if bak.is_file() and parses(bak) else None
