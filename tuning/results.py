"""Ray's ResultGrid -> the trial table and the epoch table, written atomically.

trials.csv/.parquet: one row per trial; epochs.csv: every reported epoch of every trial.
The columns and statuses are tuning/tables.py's (documented in README, "results/<name>/").
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from common.atomic import atomic_write, write_json
from tuning.checkpoints import newest_history
from tuning.ledger import ADOPTED, ADOPTED_ID, AGAIN
from tuning.space import DEPTH, WIDTH
from tuning.tables import (COMPLETED, DIVERGED, EPOCH_COLUMNS, ERROR, INTERRUPTED, METRIC_COLUMNS, STOPPED_EARLY,
                           encode_sizes, ranked)


def trial_row(trial_id: str, config: dict, epochs: pd.DataFrame, error: Any, max_epochs: int,
              time_s: float, node_id: str, cut: bool = False) -> dict:
    """One trial's row; its status says why it ended (`cut`: the search was interrupted before it did)."""
    n = len(epochs)
    last = epochs.iloc[-1] if n else None
    if cut:
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


def with_saved_epochs(df: pd.DataFrame, history: list[dict]) -> pd.DataFrame:
    """Ray's reported epochs plus those only the trial's checkpoint holds (tuning/checkpoints.py).

    Ray's result files reach storage a little after the checkpoints do: a driver killed in between
    leaves epochs that only the history saved in the checkpoint knows.
    """
    have = set(df["epoch"].dropna().astype(int)) if len(df) and "epoch" in df else set()
    extra = [h for h in history if int(h["epoch"]) not in have]
    if not extra:
        return df
    return pd.concat([df, pd.DataFrame(extra)], ignore_index=True).sort_values("epoch", kind="stable", ignore_index=True)


def trial_time_s(df: pd.DataFrame) -> float:
    """Seconds the trial ran: Ray's time_total_s at its last epoch, plus epoch times past Ray's record."""
    if "time_total_s" not in df or not df["time_total_s"].notna().any():
        return float(df["epoch_time_s"].sum()) if "epoch_time_s" in df and len(df) else math.nan
    known = df["time_total_s"].notna().to_numpy().nonzero()[0][-1]
    after = df["epoch_time_s"].iloc[known + 1:].sum() if "epoch_time_s" in df else 0.0
    return float(df["time_total_s"].iloc[known] + after)


def result_trial_id(r: Any) -> str:
    """The trial a Ray `Result` stands for: a trial asked again after a resume (tuning/ledger.py)
    stands for the lost incarnation whose results it reported."""
    m = r.metrics or {}
    return str(m.get(ADOPTED_ID) or m.get("trial_id") or Path(r.path).name)


def result_folder(r: Any) -> Path | None:
    """The trial folder holding the result's checkpoints (the lost incarnation's, for an adopted one)."""
    adopted = (r.metrics or {}).get(ADOPTED)
    return None if not r.path else Path(r.path).parent / adopted if adopted else Path(r.path)


def tables(results: Iterable[Any], max_epochs: int,
           unfinished: set[str] = frozenset()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, epochs) from Ray `Result`s; retried or resumed trials keep one row per epoch (its first report).

    Trials in `unfinished` (an interrupted search) are marked interrupted; those that never
    reported an epoch get no row.
    """
    rows, epoch_frames = [], []
    for r in results:
        adopted = bool((r.metrics or {}).get(ADOPTED))
        df = r.metrics_dataframe if r.metrics_dataframe is not None and not adopted else pd.DataFrame()
        if AGAIN in df:  # Ray stamps a report with its own pid and time: the history holds the epoch as it ran
            df = df[df[AGAIN] != True]  # noqa: E712 — NaN where the epoch was reported once
        trial_id, folder = result_trial_id(r), result_folder(r)
        df = with_saved_epochs(df, newest_history(folder) if folder else [])
        if len(df) and "epoch" in df:
            df = df.dropna(subset=["epoch"]).drop_duplicates("epoch", keep="first").sort_values("epoch")
            df = df.assign(trial_id=trial_id, epoch=df["epoch"].astype(int), diverged=df["diverged"].astype(bool))
            epoch_frames.append(df.reindex(columns=list(EPOCH_COLUMNS)))
        else:
            df = pd.DataFrame(columns=list(EPOCH_COLUMNS))
        time_s = trial_time_s(df)
        node = str(df["node_id"].iloc[-1]) if "node_id" in df and len(df) else ""
        cut = trial_id in unfinished or (folder is not None and folder.name in unfinished)
        if cut and not len(df):
            continue
        rows.append(trial_row(trial_id, with_hidden_sizes(dict(r.config or {})), df, r.error, max_epochs, time_s, node,
                              cut))
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
