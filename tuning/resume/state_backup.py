"""A last good copy of Ray's experiment state, so a driver killed mid-copy can still be resumed.

Ray saves its experiment state (experiment_state-<session>.json) and its searcher's state (the grid's
basic-variant-state, Optuna's search_gen_state and searcher-state, both pickles) in a staging folder
and then copies them into the storage folder in place. A SIGKILL during that copy leaves cut files
from which Tune cannot restore: a cut searcher state made it start the search again from nothing.
While the search runs, `back_up` copies the newest files, when all of them are whole, to
`<file>.bak` (write-then-rename, at most once a second); on --resume, `repair` puts those copies in
place of cut files. Ray's restore looks for its own names only, so it never reads a backup by itself.
"""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

from common.atomic import atomic_write
from tuning.compat import EXPERIMENT_STATE, SEARCH_STATES  # Ray's file names

SUFFIX = ".bak"


def newest(experiment: Path, pattern: str = EXPERIMENT_STATE) -> Path | None:
    """The newest file of a kind (names carry the session's timestamp, as Ray orders them), or None."""
    files = sorted(Path(experiment).glob(pattern))
    return files[-1] if files else None


def newest_state(experiment: Path) -> Path | None:
    return newest(experiment, EXPERIMENT_STATE)


def is_experiment_state(path: Path) -> bool:
    """Whether `path` is Ray's experiment state (JSON) or its backup, not a searcher's (a pickle)."""
    return path.name.startswith(EXPERIMENT_STATE.partition("*")[0])


def whole(path: Path, thorough: bool = True) -> bytes | None:
    """The file's bytes when they load; None when it is missing or cut.

    Pickles are unpickled when `thorough` (on --resume); while the search runs only their last
    byte is checked (pickle's STOP opcode), since unpickling a large searcher every second costs.
    """
    try:
        data = path.read_bytes()
        if is_experiment_state(path):
            json.loads(data)
        elif thorough:
            pickle.loads(data)
        elif not data.endswith(b"."):
            raise ValueError("cut pickle")
        return data
    except Exception:  # noqa: BLE001 — any failure to load means the file is cut or foreign
        return None


def back_up(experiment: Path) -> list[Path] | None:
    """Copy the newest state files to their backups when every one is whole; None when one is not.

    All or nothing, so the backups stay one consistent save. The bytes that loaded are the bytes
    written: Ray may rewrite a file between two reads.
    """
    files = [f for f in (newest(experiment, p) for p in (EXPERIMENT_STATE, *SEARCH_STATES)) if f is not None]
    datas = [whole(f, thorough=False) for f in files]
    if not files or any(d is None for d in datas):  # not written yet, or a copy is in flight
        return None
    return [atomic_write(f.with_name(f.name + SUFFIX), lambda tmp, d=d: tmp.write_bytes(d))
            for f, d in zip(files, datas)]


def backup_of(state: Path) -> Path | None:
    """The whole backup of a state file, or None."""
    bak = state.with_name(state.name + SUFFIX)
    return bak if whole(bak) is not None else None


def cut_files(experiment: Path) -> list[Path]:
    """The newest state files that do not load."""
    files = [newest(experiment, p) for p in (EXPERIMENT_STATE, *SEARCH_STATES)]
    return [f for f in files if f is not None and whole(f) is None]


def backup_callback(experiment: Path, every_s: float = 1.0):
    """A Tune callback that keeps a whole copy of the experiment state beside it (`back_up`).

    Ray asks callbacks for their state right after each save of the experiment state, which is when
    the copy is made; at most once every `every_s` seconds, so large states cost little.
    """
    import time

    from ray import tune

    class _Backup(tune.Callback):
        last = -math.inf

        def get_state(self) -> None:
            if time.monotonic() - self.last >= every_s and back_up(experiment) is not None:
                self.last = time.monotonic()
            return None  # stateless: Ray writes no callback file for it

    return _Backup()
