"""A search's results as text: the summary printed after every search and by `python -m tuning.report`,
and the side-by-side comparison of several searches.

Pure functions of `tuning.results.tables.Tables`; no matplotlib, torch or Ray.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from common.folders import STATE_INTERRUPTED
from tuning.results.tables import COMPLETED, INTERRUPTED, STATUSES, Tables, fmt_value, hyperparameters, load_tables, ranked


def format_test_accuracy(report: dict | None) -> str | None:
    """'98.45 % ± 0.05 (3 seeds)' from test_report.json, or None when there is none."""
    acc = (report or {}).get("test_accuracy")
    if not isinstance(acc, dict) or acc.get("mean") is None:
        return None
    n = len(report.get("seeds") or acc.get("per_seed") or [0])
    return f"{100 * acc['mean']:.2f} % ± {100 * (acc.get('std') or 0):.2f} ({n} seed{'s' if n != 1 else ''})"


def status_counts(trials: pd.DataFrame) -> str:
    counts = trials["status"].value_counts()
    order = [s for s in STATUSES if s in counts] + sorted(set(counts.index) - set(STATUSES))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def top_table(trials: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """The `top` best trials as display strings: id, hyperparameters, epochs, val acc in %."""
    best = ranked(trials).head(top)
    cols = ["trial_id", *hyperparameters(trials)]
    if (best["status"] != COMPLETED).any():
        cols.append("status")
    out = best[cols].map(fmt_value)
    out["epochs"] = best["epochs_run"].map(lambda v: fmt_value(int(v)) if np.isfinite(v) else "-")
    out["val acc %"] = best["val_accuracy_best"].map(lambda v: f"{100 * v:.2f}")
    return out


def trial_epochs(t: Tables) -> int:
    n = t.trials["epochs_run"].sum(min_count=1)
    return int(n) if np.isfinite(n) else len(t.epochs)


def node_count(t: Tables) -> int:
    """Nodes that ran the trials' epochs.

    A node id names a node of one Ray cluster instance: a local Ray started again for --resume gives
    the same machine a new id. So ids are counted within each instance (epochs.csv's ray_session) and
    the largest count is kept; or the number of node IPs, where that is larger (a cluster started again
    on other machines). Two Ray nodes on one machine share an IP but have two ids in one instance.
    Folders from before epochs.csv had these columns: the distinct node ids of trials.csv.
    """
    e = t.epochs
    if {"node_id", "ray_session"} <= set(e.columns) and e["ray_session"].notna().any():
        per_session = e.dropna(subset=["node_id", "ray_session"]).groupby("ray_session")["node_id"].nunique()
        ips = e["node_ip"].dropna().nunique() if "node_ip" in e else 0
        return int(max(per_session.max(), ips))
    return int(t.trials["node_id"].dropna().nunique()) if "node_id" in t.trials else 0


def finished_count(trials: pd.DataFrame) -> int:
    """Trials that ended on their own (completed, stopped early or failed): all but the interrupted."""
    return int((trials["status"] != INTERRUPTED).sum())


def interrupted_line(trials: pd.DataFrame, info: dict) -> str:
    """'interrupted: N of M trials': N ran to their end (or were stopped, or failed), M were planned."""
    n, planned = finished_count(trials), info.get("planned")
    of = f" of {planned}" if isinstance(planned, int) and not isinstance(planned, bool) else ""
    return f"interrupted: {n}{of} trials (run the search again with --resume to finish it)"


def summary_text(tables: Tables, top: int = 5) -> str:
    """The compact report printed after every search: counts, top trials, best config, test, cost."""
    t, trials = tables, tables.trials
    search = (t.best or {}).get("search")
    lines = [f"search {t.name}{f' ({search})' if search else ''}: {len(trials)} trials: {status_counts(trials)}"]
    if (t.search_info or {}).get("state") == STATE_INTERRUPTED:
        lines.insert(0, interrupted_line(trials, t.search_info))
    table = top_table(trials, top)
    if len(table):
        lines += [f"top {len(table)} by best validation accuracy:", table.to_string(index=False)]
    else:
        lines.append("no trial finished: nothing to rank")
    if t.best:
        cfg = {k: v for k, v in (t.best.get("config") or {}).items() if k not in ("threads", "device")}
        acc = t.best.get("val_accuracy")
        head = f"best: {t.best.get('trial_id')}" + (f" (val {100 * acc:.2f} %)" if acc is not None else "")
        body = ", ".join(f"{k}={fmt_value(v)}" for k, v in cfg.items())
        lines += textwrap.wrap(f"{head}: {body}", width=100, subsequent_indent="  ")
    elif len(table):
        lines.append(f"best: {table['trial_id'].iloc[0]} (no best.json)")
    test = format_test_accuracy(t.test_report)
    if test:
        loss = (t.test_report.get("test_loss") or {}).get("mean")
        lines.append(f"test accuracy: {test}" + (f", loss {loss:.4f}" if loss is not None else ""))
        c = t.test_report.get("committee") or {}
        if c.get("test_accuracy") is not None:
            lines.append(f"committee of {c.get('members')} ({c.get('of')}): {100 * c['test_accuracy']:.2f} % test "
                         "(committee.pt)")
    else:
        lines.append("test accuracy: not measured (no test_report.json)")
    secs, nodes = trials["time_s"].dropna(), node_count(t)
    lines.append(f"compute: {trial_epochs(t)} trial-epochs, " + (
        f"trial time {secs.sum():.0f} s total, {secs.mean():.1f} s mean, {secs.max():.1f} s max" if len(secs)
        else "trial time unknown") + (f", on {nodes} node(s)" if nodes else ""))
    return "\n".join(lines)


def compare_rows(tables: Sequence[Tables]) -> pd.DataFrame:
    """One row of headline numbers per search (fractions; NaN where unknown)."""
    rows = []
    for t in tables:
        r, acc = ranked(t.trials), ((t.test_report or {}).get("test_accuracy") or {})
        rows.append({
            "name": t.name, "search": (t.best or {}).get("search", "-"), "trials": len(t.trials),
            "trial-epochs": trial_epochs(t),
            "best_val": float(r["val_accuracy_best"].iloc[0]) if len(r) else np.nan,
            "test_mean": acc.get("mean", np.nan), "test_std": acc.get("std", np.nan),
            "test": format_test_accuracy(t.test_report) or "-", "time_s": float(t.trials["time_s"].sum()),
        })
    return pd.DataFrame(rows)


def compare_text(folders: Sequence[str | Path | Tables]) -> str:
    """Side-by-side headline numbers of several searches."""
    rows = compare_rows([f if isinstance(f, Tables) else load_tables(f) for f in folders])
    shown = rows[["name", "search", "trials", "trial-epochs"]].copy()
    shown["best val acc %"] = rows["best_val"].map(lambda v: f"{100 * v:.2f}" if np.isfinite(v) else "-")
    shown["test accuracy"] = rows["test"]
    shown["trial time s"] = rows["time_s"].map(lambda v: f"{v:.0f}")
    return shown.to_string(index=False)
