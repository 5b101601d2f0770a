"""The results schema: what trials.csv and epochs.csv hold, read back, and ranked.

Every other module (reading.py writes, summary.py and plots.py read, README documents) takes the
column names, the status values and the hidden_sizes codec from here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.errors import InputError
from tuning.results.tableio import read_json, read_table
from tuning.search.space import encode_sizes

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- statuses of a trial
COMPLETED = "completed"  # ran every epoch
STOPPED_EARLY = "stopped_early"  # stopped before its last epoch: by the scheduler at a rung, or by --timeout
DIVERGED = "diverged"  # a non-finite loss ended it
INTERRUPTED = "interrupted"  # cut off by an interrupt, or by --timeout before its first epoch: never ranked
ERROR = "error"  # its worker raised (after --max-failures retries)
STATUSES = (COMPLETED, STOPPED_EARLY, DIVERGED, INTERRUPTED, ERROR)
FAILED = (DIVERGED, ERROR)

# ---------------------------------------------------------------- columns
METRIC_COLUMNS = ("trial_id", "status", "epochs_run", "val_accuracy_best", "val_accuracy_last", "val_loss_best",
                  "val_loss_last", "train_accuracy_last", "train_loss_last", "time_s", "node_id")
"""The fixed non-hyperparameter columns of trials.csv; every other column is a hyperparameter."""
EPOCH_COLUMNS = ("trial_id", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                 "epoch_time_s", "diverged", "pid", "timestamp", "node_id", "node_ip", "ray_session")
"""pid/timestamp: which worker ran the epoch, when; node_id/node_ip/ray_session: on which node of which Ray
cluster instance (a node id is that instance's: a local Ray started again for --resume names the same
machine anew, so summary.node_count counts ids per ray_session)."""
REQUIRED_TRIAL_COLUMNS = ("trial_id", "status", "val_accuracy_best")
REQUIRED_EPOCH_COLUMNS = ("trial_id", "epoch", "val_accuracy")
TEXT_COLUMNS = ("trial_id", "status", "node_id", "node_ip", "ray_session", "hidden_sizes", "optimizer", "schedule")
"""Read as strings: a one-layer hidden_sizes like "512" must not turn into an int."""


# ---------------------------------------------------------------- ranking
def hyperparameters(trials: pd.DataFrame) -> list[str]:
    """The searched columns, in file order: whatever is not a fixed metric column."""
    return [c for c in trials.columns if c not in METRIC_COLUMNS]


def usable(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with a finite best validation accuracy that neither diverged, failed nor were interrupted."""
    ok = ~trials["status"].isin((*FAILED, INTERRUPTED)) & np.isfinite(trials["val_accuracy_best"].astype(float))
    return trials[ok]


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    """Usable trials, best validation accuracy first (ties keep file order)."""
    return usable(trials).sort_values("val_accuracy_best", ascending=False, kind="stable")


def fmt_value(v: Any) -> str:
    """A hyperparameter as a short string: 3 significant digits for floats, '-' for missing."""
    if isinstance(v, (list, tuple)):
        return encode_sizes(v)
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e6 else f"{v:.3g}"
    return str(v)


# ---------------------------------------------------------------- reading a results folder
@dataclass
class Tables:
    """Everything a results folder holds; best/test_report are None when their file is absent."""

    folder: Path
    trials: pd.DataFrame
    epochs: pd.DataFrame
    best: dict | None = None
    test_report: dict | None = None
    search_info: dict | None = None  # search.json: state ("running"/"interrupted"/"finished"), planned trials

    @property
    def name(self) -> str:
        return str((self.best or {}).get("name") or self.folder.name)

    @property
    def params(self) -> list[str]:
        return hyperparameters(self.trials)


def load_tables(folder: str | Path) -> Tables:
    """Read trials.csv (required), epochs.csv, best.json, test_report.json and search.json of one search."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such results folder")
    if not (folder / "trials.csv").is_file():
        raise InputError(f"{folder}: not a results folder (no trials.csv)")
    trials = read_table(folder / "trials.csv", REQUIRED_TRIAL_COLUMNS, TEXT_COLUMNS)
    for c in METRIC_COLUMNS:  # partial tables still load; absent metrics read as NaN
        if c not in trials.columns:
            trials[c] = np.nan
        elif c not in TEXT_COLUMNS:
            trials[c] = pd.to_numeric(trials[c], errors="coerce")
    if (folder / "epochs.csv").is_file():
        epochs = read_table(folder / "epochs.csv", REQUIRED_EPOCH_COLUMNS, TEXT_COLUMNS)
    else:
        log.warning("%s: no epochs.csv; learning curves are skipped", folder)
        epochs = pd.DataFrame({c: pd.Series(dtype=str if c == "trial_id" else float) for c in REQUIRED_EPOCH_COLUMNS})
    return Tables(folder, trials, epochs, read_json(folder / "best.json"), read_json(folder / "test_report.json"),
                  read_json(folder / "search.json"))
