"""Ray's ResultGrid -> the trial table and the epoch table, written atomically.

trials.csv/.parquet: one row per trial; epochs.csv: every reported epoch of every trial.
The columns and statuses are tuning/results/tables.py's (documented in README, "results/<name>/").

Where the numbers come from: each epoch as the trial saved it in its checkpoint's history
(tuning/resume/checkpoints.py; JSON, so typed), then Ray's rows of progress.csv for epochs no checkpoint
holds yet, and Ray's time of each report. Ray reads progress.csv as text: a resumed trial's rows
used to slide under the wrong columns (a hostname under `time_total_s`, issue 28; see
tuning/results/progress_csv.py), so Ray's values are converted to numbers here, and a row that is not numbers
where numbers belong, or is cut short, is left out with one warning naming the trial and columns.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from common.atomic import atomic_write, write_json
from tuning.resume.checkpoints import newest_history
from tuning.resume.ledger import ADOPTED, ADOPTED_ID, AGAIN
from tuning.results.progress_csv import PROGRESS
from tuning.search.space import DEPTH, WIDTH, encode_sizes
from tuning.results.tables import (COMPLETED, DIVERGED, EPOCH_COLUMNS, ERROR, INTERRUPTED, METRIC_COLUMNS, STOPPED_EARLY,
                                   ranked)

log = logging.getLogger(__name__)
NUMERIC = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_time_s", "pid",
           "timestamp", "time_this_iter_s", "time_total_s")
"""Columns read as numbers; a row holding anything else there is damaged and left out."""
RAY_TIME = "time_this_iter_s"  # Ray's time of one report: the epoch with its set-up and reporting
FLAGS = ("diverged",)
"""Columns read as True/False; likewise."""
TRUE, FALSE = frozenset({True, "True", "true", 1, "1"}), frozenset({False, "False", "false", 0, "0"})


def trial_row(trial_id: str, config: dict, epochs: pd.DataFrame, error: Any, max_epochs: int,
              time_s: float, node_id: str, cut: bool = False) -> dict:
    """One trial's row; its status says why it ended (`cut`: the search was interrupted before it did)."""
    n = len(epochs)
    last = epochs.iloc[-1] if n else None
    if cut or (not n and error is None):  # (no epoch: --timeout ended the search before this trial ran)
        status = INTERRUPTED
    elif error is not None:
        status = ERROR
    elif n and bool(last["diverged"]):
        status = DIVERGED
    elif n < max_epochs:
        status = STOPPED_EARLY
    else:
        status = COMPLETED
    nan = math.nan
    col = lambda c, f: (float(getattr(epochs[c], f)()) if n and epochs[c].notna().any() else nan)  # noqa: E731
    return {
        "trial_id": trial_id, "status": status, **{k: encode_sizes(v) for k, v in config.items()},
        "epochs_run": n,
        "val_accuracy_best": col("val_accuracy", "max"), "val_accuracy_last": float(last["val_accuracy"]) if n else nan,
        "val_loss_best": col("val_loss", "min"), "val_loss_last": float(last["val_loss"]) if n else nan,
        "train_accuracy_last": float(last["train_accuracy"]) if n else nan,
        "train_loss_last": float(last["train_loss"]) if n else nan,
        "time_s": time_s, "node_id": node_id,
    }


def with_hidden_sizes(config: dict) -> dict:
    """Conditional-depth trials (n_layers, width_i) also get the hidden_sizes they trained."""
    if DEPTH in config:
        config["hidden_sizes"] = [config[f"{WIDTH}_{i}"] for i in range(1, int(config[DEPTH]) + 1)]
    return config


def as_flag(values: pd.Series) -> pd.Series:
    """True/False (as Python or as CSV text) -> bool; anything else -> NaN."""
    return values.map(lambda v: True if v in TRUE else False if v in FALSE else math.nan, na_action="ignore")


def typed(df: pd.DataFrame, trial_id: str, source: str, cut_rows: bool = False) -> pd.DataFrame:
    """`df` with NUMERIC columns as numbers and FLAGS as booleans; damaged rows left out, with one warning.

    A row is damaged when a NUMERIC or FLAGS cell holds something else (text, from a row whose cells
    slid under other columns), or when it has no epoch. `cut_rows` (a CSV file's rows): also when its
    last column is empty where other rows fill it, a row cut short (pandas fills missing cells with NaN).
    """
    if df.empty:
        return df
    df, bad, why = df.copy(deep=False), pd.Series(False, index=df.index), []
    for c in [c for c in NUMERIC if c in df and not is_numeric_dtype(df[c])]:  # (pandas parsed the others)
        num = pd.to_numeric(df[c], errors="coerce")
        wrong = num.isna() & df[c].notna()
        if wrong.any():
            why.append(f"not a number in {c} ({df[c][wrong].iloc[0]!r})")
        df[c], bad = num, bad | wrong
    for c in [c for c in FLAGS if c in df and not is_bool_dtype(df[c])]:
        flag = as_flag(df[c])
        wrong = flag.isna() & df[c].notna()
        if wrong.any():
            why.append(f"not True/False in {c} ({df[c][wrong].iloc[0]!r})")
        df[c], bad = flag, bad | wrong
    if "epoch" in df and (no_epoch := df["epoch"].isna() & ~bad).any():
        why.append("no epoch")
        bad |= no_epoch
    last = df.columns[-1]
    if cut_rows and df[last].notna().any() and (short := df[last].isna() & ~bad).any():
        why.append(f"cut short (no {last})")
        bad |= short
    if bad.any():
        log.warning("trial %s: %d row(s) of %s left out: %s", trial_id, int(bad.sum()), source, "; ".join(why))
    return df[~bad]


def merge_epochs(saved: pd.DataFrame, ray_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch: the checkpoint history's (`saved`), with Ray's RAY_TIME of the same report,
    then Ray's rows (their first report) of the epochs after the trial's newest checkpoint.

    Why the history first: it is the line of epochs the trial's model went through (a resumed trial
    repeats the epochs after its checkpoint; Ray's file holds both runs, or, for a driver killed before
    Ray's files reached storage, neither), and it is JSON, not text to parse.
    """
    if "epoch" not in ray_rows:
        ray_rows = pd.DataFrame({"epoch": []}, dtype=float)
    if "epoch" in saved and len(saved):
        keys = [c for c in ("epoch", "pid", "timestamp") if c in saved and c in ray_rows]
        if RAY_TIME in ray_rows:  # the same report: Ray keeps the trial's pid and timestamp
            times: dict[tuple, float] = {}
            for key, t in zip(zip(*(ray_rows[k].tolist() for k in keys)), ray_rows[RAY_TIME].tolist()):
                if not math.isnan(t):
                    times.setdefault(key, t)  # (1, 7, 101) finds (1.0, 7.0, 101.0)
            saved = saved.assign(**{RAY_TIME: [times.get(key, math.nan)
                                               for key in zip(*(saved[k].tolist() for k in keys))]})
        later = ~np.isin(ray_rows["epoch"].to_numpy(), saved["epoch"].to_numpy())
        out = pd.concat([saved, ray_rows[later]], ignore_index=True) if later.any() else saved
    else:
        out = ray_rows
    if out["epoch"].is_monotonic_increasing and out["epoch"].is_unique:
        return out.reset_index(drop=True)
    return out.sort_values("epoch", kind="stable").drop_duplicates("epoch", keep="first", ignore_index=True)


def numbers(df: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers (NaN where absent or not a number)."""
    return pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(math.nan, index=df.index)


def trial_time_s(df: pd.DataFrame) -> float:
    """Seconds the trial ran: the sum over its epochs (merge_epochs) of Ray's time of that report, set-up
    and reporting included, or the epoch's own epoch_time_s where Ray's row is lost.

    Why not Ray's time_total_s at the last epoch: Ray starts it again from 0 when it resumes a trial
    whose checkpoint its saved state lacks (the trial itself carries on from its own), and its row of
    an epoch can be lost with the driver.
    """
    per_epoch = numbers(df, RAY_TIME).fillna(numbers(df, "epoch_time_s"))
    return float(per_epoch.sum()) if per_epoch.notna().any() else math.nan


def result_trial_id(r: Any) -> str:
    """The trial a Ray `Result` stands for: a trial asked again after a resume (tuning/resume/ledger.py)
    stands for the lost incarnation whose results it reported."""
    m = r.metrics or {}
    return str(m.get(ADOPTED_ID) or m.get("trial_id") or Path(r.path).name)


def result_folder(r: Any) -> Path | None:
    """The trial folder holding the result's checkpoints (the lost incarnation's, for an adopted one)."""
    adopted = (r.metrics or {}).get(ADOPTED)
    return None if not r.path else Path(r.path).parent / adopted if adopted else Path(r.path)


def last_value(df: pd.DataFrame, column: str) -> str:
    values = df[column].dropna() if column in df else ()
    return str(values.iloc[-1]) if len(values) else ""


def trial_epochs(r: Any, trial_id: str, folder: Path | None) -> pd.DataFrame:
    """The typed epochs of one `Result` (see merge_epochs), sorted, one row per epoch."""
    adopted = bool((r.metrics or {}).get(ADOPTED))
    rows = r.metrics_dataframe if r.metrics_dataframe is not None and not adopted else pd.DataFrame()
    rows = typed(rows, trial_id, str(folder / PROGRESS) if folder else PROGRESS, cut_rows=True)
    if AGAIN in rows:  # a trial that had ended reported its last epoch again: the history holds it as it ran
        rows = rows[~as_flag(rows[AGAIN]).eq(True)]
    history = newest_history(folder) if folder else []
    saved = typed(pd.DataFrame(history), trial_id, "its checkpoint history")
    df = merge_epochs(saved, rows)
    if not len(df):
        return pd.DataFrame(columns=list(EPOCH_COLUMNS))
    diverged = df["diverged"].eq(True) if "diverged" in df else False
    return df.assign(trial_id=trial_id, epoch=df["epoch"].astype(int), diverged=diverged)


def tables(results: Iterable[Any], max_epochs: int,
           unfinished: set[str] = frozenset()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, epochs) from Ray `Result`s; a retried or resumed trial keeps one row per epoch (merge_epochs).

    Trials in `unfinished` (an interrupted search) are marked interrupted; those that never
    reported an epoch get no row.
    """
    rows, epoch_frames = [], []
    for r in results:
        trial_id, folder = result_trial_id(r), result_folder(r)
        df = trial_epochs(r, trial_id, folder)
        if len(df):
            epoch_frames.append(df.reindex(columns=list(EPOCH_COLUMNS)))
        cut = trial_id in unfinished or (folder is not None and folder.name in unfinished)
        if cut and not len(df):
            continue
        rows.append(trial_row(trial_id, with_hidden_sizes(dict(r.config or {})), df, r.error, max_epochs,
                              trial_time_s(df), last_value(df, "node_id"), cut))
    trials = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(METRIC_COLUMNS))
    epochs = pd.concat(epoch_frames, ignore_index=True) if epoch_frames else pd.DataFrame(columns=list(EPOCH_COLUMNS))
    return trials.sort_values("val_accuracy_best", ascending=False, na_position="last", ignore_index=True), epochs


def best_trial(trials: pd.DataFrame) -> pd.Series | None:
    """Highest best validation accuracy among trials that neither diverged nor errored."""
    top = ranked(trials)
    return None if top.empty else top.iloc[0]


def write_tables(out: Path, trials: pd.DataFrame, epochs: pd.DataFrame) -> list[Path]:
    return [
        atomic_write(out / "trials.csv", lambda p: trials.to_csv(p, index=False)),
        atomic_write(out / "trials.parquet", lambda p: trials.to_parquet(p, index=False)),
        atomic_write(out / "epochs.csv", lambda p: epochs.to_csv(p, index=False)),
    ]


def write_best(out: Path, best: pd.Series, config: dict, search: str, name: str) -> Path:
    return write_json(out / "best.json", {
        "trial_id": best["trial_id"], "config": config, "val_accuracy": float(best["val_accuracy_best"]),
        "epochs_run": int(best["epochs_run"]), "search": search, "name": name,
    })

