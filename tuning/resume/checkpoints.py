"""A trial's saved epochs on disk: Ray's checkpoint_NNNNNN/ folders, each with the run and the epoch history.

Why read them ourselves: a worker writes its checkpoint to storage before Ray's driver hears of
it, and the driver's own record (its experiment state, and the result files it copies to storage
now and then) lags behind. A driver killed in that gap would make --resume rerun epochs, or leave
epochs out of the tables. Reading the folders closes the gap: a resumed trial continues from its
newest whole checkpoint, and the tables get every epoch its history names.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"  # the run (model, optimiser, schedule, RNG), its last metrics and the history
HISTORY_FILE = "history.json"  # the metrics of every epoch so far: small, read without torch
CHECKPOINT_AFTER_S = 60.0  # a checkpoint at least this often by default: the most training a retry or resume redoes


def checkpoint_due(epoch: int, max_epochs: int, rungs: frozenset[int], diverged: bool, since_s: float,
                   every_s: float = CHECKPOINT_AFTER_S) -> bool:
    """Whether this epoch's report carries a checkpoint. Rungs: ASHA/sync compare (and sync pauses)
    there; the last epoch: the tables and a resume read the finished trial's history from it;
    `every_s` after the last one: it bounds the training a retry or --resume redoes."""
    return epoch in rungs or epoch >= max_epochs or diverged or since_s >= every_s


def write(folder: Path, run_state: dict, history: list[dict[str, Any]]) -> None:
    """Save one epoch's checkpoint files into `folder` (which Ray then persists)."""
    import torch

    torch.save({"run": run_state, "metrics": history[-1], "history": history}, Path(folder) / STATE_FILE)
    write_history(folder, history)


def write_history(folder: Path, history: list[dict[str, Any]]) -> None:
    """The epoch history alone (no torch): what a resume and the tables read."""
    (Path(folder) / HISTORY_FILE).write_text(json.dumps(history))


def read_history(folder: Path) -> list[dict[str, Any]] | None:
    """The epoch history saved in one checkpoint folder; None when missing or cut."""
    try:
        history = json.loads((Path(folder) / HISTORY_FILE).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(history, list) and history and all(isinstance(h, dict) and "epoch" in h for h in history)
    return history if ok else None


def histories(trial_dir: Path) -> list[tuple[list[dict[str, Any]], Path]]:
    """(history, checkpoint folder) for each whole checkpoint of a trial, the most epochs first."""
    found = []
    for folder in Path(trial_dir).glob("checkpoint_*"):
        history = read_history(folder)
        if history is not None:
            found.append((history, folder))
    return sorted(found, key=lambda hf: (int(hf[0][-1]["epoch"]), hf[1].name), reverse=True)


def newest_history(trial_dir: Path) -> list[dict[str, Any]]:
    """The longest epoch history any of the trial's checkpoints holds ([] when none)."""
    found = histories(trial_dir)
    return found[0][0] if found else []


def load_state(path: Path) -> dict | None:
    """A checkpoint's saved state; None when the file is damaged or foreign."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(saved, dict) or "run" not in saved or "metrics" not in saved:
            raise ValueError("no run state in it")
        saved.setdefault("history", [saved["metrics"]])  # checkpoints written before the history was kept
        return saved
    except Exception:  # noqa: BLE001 — truncated or foreign: continuing from it would fail again
        return None


def newest_state(trial_dir: Path) -> dict | None:
    """The state of the trial's checkpoint with the most epochs that loads; None when there is none."""
    for _, folder in histories(trial_dir):
        saved = load_state(folder / STATE_FILE)
        if saved is not None:
            return saved
        log.warning("%s: damaged checkpoint; trying the one before it", folder / STATE_FILE)
    return None


def epoch_of(saved: dict | None) -> int:
    return int(saved["metrics"]["epoch"]) if saved else 0
