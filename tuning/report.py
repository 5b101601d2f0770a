"""`python -m tuning.report`: read a search's results folder, print its summary, redraw its plots.

Works from the files alone (no Ray), so a finished search can be re-read anywhere. Text functions
never import matplotlib or torch: the tuner prints `summary_text` at the end of every search.
"""
from __future__ import annotations

import argparse
import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from data.errors import InputError
from tuning.preflight import STATE_INTERRUPTED
from tuning.tableio import one_line, read_json, read_table

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("trial_id", "status", "epochs_run", "val_accuracy_best", "val_accuracy_last", "val_loss_best",
                  "val_loss_last", "train_accuracy_last", "train_loss_last", "time_s", "node_id")
"""The fixed non-hyperparameter columns of trials.csv; every other column is a hyperparameter."""
REQUIRED_TRIAL_COLUMNS = ("trial_id", "status", "val_accuracy_best")
REQUIRED_EPOCH_COLUMNS = ("trial_id", "epoch", "val_accuracy")
INTERRUPTED = "interrupted"
"""A trial the search's interrupt cut off: neither failed nor finished, so never ranked."""
STATUSES = ("completed", "stopped_early", "diverged", INTERRUPTED, "error")
FAILED = ("diverged", "error")
TEXT_COLUMNS = ("trial_id", "status", "node_id", "hidden_sizes", "optimizer", "schedule")
"""Read as strings: a one-layer hidden_sizes like "512" must not turn into an int."""


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


def fmt_value(v: Any) -> str:
    """A hyperparameter as a short string: 3 significant digits for floats, '-' for missing."""
    if isinstance(v, (list, tuple)):
        return "-".join(str(x) for x in v)
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e6 else f"{v:.3g}"
    return str(v)


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
    if (best["status"] != "completed").any():
        cols.append("status")
    out = best[cols].map(fmt_value)
    out["epochs"] = best["epochs_run"].map(lambda v: fmt_value(int(v)) if np.isfinite(v) else "-")
    out["val acc %"] = best["val_accuracy_best"].map(lambda v: f"{100 * v:.2f}")
    return out


def trial_epochs(t: Tables) -> int:
    n = t.trials["epochs_run"].sum(min_count=1)
    return int(n) if np.isfinite(n) else len(t.epochs)


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
    else:
        lines.append("test accuracy: not measured (no test_report.json)")
    secs, nodes = trials["time_s"].dropna(), trials["node_id"].dropna().nunique()
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


# ---------------------------------------------------------------- plots

PlotFn = Callable[[Tables], Any]  # Tables -> matplotlib Figure, or None when the plot makes no sense


def standard_plots() -> list[tuple[str, PlotFn]]:
    """(filename, function) of every built-in plot; imported lazily so text needs no matplotlib."""
    from tuning import plots as p

    return [
        ("val_acc_vs_lr.png", lambda t: p.accuracy_vs_param(t.trials, "lr", "batch_size")),
        ("val_acc_vs_batch.png", lambda t: p.accuracy_vs_batch(t.trials)),
        ("heatmap_lr_batch.png", lambda t: p.heatmap(t.trials, "batch_size", "lr")),
        ("learning_curves.png", lambda t: p.top_learning_curves(t.epochs, t.trials)),
        ("confusion.png", lambda t: p.confusion_from_report(t.test_report, t.name)),
        ("predictions.png", predictions_plot),
    ]


def train_mean_std(train_images: np.ndarray) -> tuple[float, float]:
    """Pixel mean/std in [0, 1] computed as data.splits.make_splits does, over all 60k training
    images, which is what the retrain (val_fraction 0) normalised with."""
    import torch

    scaled = torch.from_numpy(np.ascontiguousarray(train_images)).to(torch.float32).div_(255.0)
    return float(scaled.mean()), float(scaled.std())


def load_model(t: Tables) -> Any:
    """model.pt rebuilt as model.mlp.MLP from best.json's config; None when either is missing."""
    path = t.folder / "model.pt"
    if not path.is_file() or not (t.best or {}).get("config"):
        return None
    import dataclasses

    import torch

    from model.mlp import MLP
    from model.train import TrainConfig

    cfg = dict(t.best["config"])
    if isinstance(cfg.get("hidden_sizes"), str):  # tolerate the trials.csv spelling "512-256"
        cfg["hidden_sizes"] = [int(w) for w in cfg["hidden_sizes"].split("-")]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    model = MLP(TrainConfig(**{k: v for k, v in cfg.items() if k in known}).mlp())
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, ValueError) as e:
        raise InputError(f"{path}: does not load into the MLP of best.json's config ({one_line(e)[:200]})") from e
    return model.eval()


def predictions_plot(t: Tables, n: int = 32) -> Any:
    """The first n packaged MNIST test digits, 'predicted/true' by the saved best model."""
    model = load_model(t)
    if model is None:
        return None
    from data.mnist import DataConfig, load_arrays
    from tuning.plots import predictions_grid

    tx, _, sx, sy = load_arrays(DataConfig())
    title = f"predicted / true (test), best trial {t.best.get('trial_id')}"
    return predictions_grid(model, sx[:n], sy[:n], *train_mean_std(tx), title=title)


def redraw(folder: str | Path, tables: Tables, out: str | Path | None = None) -> list[Path]:
    """Write every plot that makes sense into <folder>/plots/ (or `out`), atomically; return the paths."""
    from data.atomic import save_figure

    out = Path(out) if out is not None else Path(folder) / "plots"
    written = []
    for filename, draw in standard_plots():
        fig = draw(tables)
        if fig is None:
            log.info("%s: skipped (not enough data)", filename)
            continue
        written.append(save_figure(fig, out / filename))
    if (Path(folder) / "study.db").exists():  # an Optuna search: its own plots, from the stored study
        from tuning.study import load_study, optuna_figures

        study = load_study(Path(folder))
        written += [save_figure(fig, out / name) for name, fig in (optuna_figures(study) if study else [])]
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tuning.report", description=__doc__)
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="results/<name>/ folder(s) of a search")
    p.add_argument("--compare", action="store_true", help="one side-by-side table (and compare.png) of all FOLDERs")
    p.add_argument("--top", type=int, default=5, help="trials in the top table")
    p.add_argument("--no-plots", action="store_true", help="print only; draw nothing")
    p.add_argument("--out", default=None, help="write plots here instead of FOLDER/plots/")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.top < 1:
        raise InputError(f"--top {args.top}: must be >= 1")
    tables = [load_tables(f) for f in args.folders]
    try:
        return _print_and_draw(args, tables)
    except OSError as e:  # an unwritable plots/ or --out folder
        raise InputError(f"{e.filename or args.out}: cannot write plots ({e.strerror or e})") from e


def _print_and_draw(args: argparse.Namespace, tables: list[Tables]) -> int:
    if args.compare:
        print(compare_text(tables))
        if not args.no_plots:
            from data.atomic import save_figure
            from tuning.plots import compare_accuracy

            out = Path(args.out) if args.out else tables[0].folder / "plots"
            print(f"wrote {save_figure(compare_accuracy(compare_rows(tables)), out / 'compare.png')}")
        return 0
    for i, t in enumerate(tables):
        print(("\n" if i else "") + summary_text(t, args.top))
        if not args.no_plots:
            out = None if args.out is None else Path(args.out) / (t.folder.name if len(tables) > 1 else "")
            paths = redraw(t.folder, t, out)
            print(f"wrote {len(paths)} plots to {paths[0].parent if paths else '-'}/: {' '.join(p.name for p in paths)}")
    return 0


if __name__ == "__main__":
    from data.cli import run_cli

    run_cli(main)
