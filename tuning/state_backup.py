"""A last good copy of Ray's experiment state, so a driver killed mid-save can still be resumed.

Ray rewrites experiment_state-<session>.json in place, and copies it into the storage folder in
place too. A SIGKILL during either leaves a cut file from which Tune cannot restore. While the
search runs, `back_up` copies the newest state that parses to `<file>.bak` (write-then-rename,
at most once a second); on --resume, preflight.check_experiment falls back on that copy. Ray's
restore looks for `experiment_state-*.json` only, so it never reads the backup by itself.
"""
from __future__ import annotations

import json
from pathlib import Path

from common.atomic import atomic_write

SUFFIX = ".bak"


def newest_state(experiment: Path) -> Path | None:
    """The experiment's newest state file (names carry the session's timestamp), or None."""
    files = sorted(Path(experiment).glob("experiment_state-*.json"))
    return files[-1] if files else None


def whole(path: Path) -> bytes | None:
    """The file's bytes when they parse as JSON; None when it is missing or cut."""
    try:
        data = path.read_bytes()
        json.loads(data)
        return data
    except (OSError, ValueError):
        return None


def back_up(experiment: Path) -> Path | None:
    """Copy the newest state to its backup when it is whole; None when there was nothing whole to copy.

    The bytes that parsed are the bytes written: Ray may rewrite the state between two reads.
    """
    state = newest_state(experiment)
    data = whole(state) if state is not None else None  # None: not written yet, or a copy is in flight
    if data is None:
        return None
    return atomic_write(state.with_name(state.name + SUFFIX), lambda tmp: tmp.write_bytes(data))


def backup_of(state: Path) -> Path | None:
    """The whole backup of a state file, or None."""
    bak = state.with_name(state.name + SUFFIX)
    return bak if whole(bak) is not None else None
