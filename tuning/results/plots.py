"""Pictures of a whole search (pure: tables in, matplotlib Figure out, or None when the plot
would say nothing, e.g. the column it needs was not searched; the caller saves).

Accuracies are drawn in %. Diverged and errored trials have no meaningful accuracy: they are left
out of lines and cells but marked (a red x at the bottom, a grey x in a heatmap cell), so a
learning rate that blew up is visible rather than silently missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from common.plotting import plt
from tuning.results.summary import format_test_accuracy
from tuning.results.tables import FAILED, fmt_value, hyperparameters, ranked, usable

LABELS = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay",
          "augment_shift": "augmentation shift", "n_layers": "hidden layers", "hidden_sizes": "hidden sizes"}
MAX_DISCRETE = 10  # more distinct values than this = a continuous (Optuna-sampled) axis


def _label(col: str) -> str:
    return LABELS.get(col, col.replace("_", " "))


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _discrete(s: pd.Series) -> bool:
    return not _numeric(s) or s.nunique() <= MAX_DISCRETE


def _log_axis(s: pd.Series, col: str) -> bool:
    """Log scale when every value is positive and they span over a decade (batch sizes: a factor 4)."""
    v = s.dropna().to_numpy(dtype=float) if _numeric(s) else np.array([])
    return bool(len(v)) and v.min() > 0 and v.max() / v.min() >= (4 if col == "batch_size" else 10.001)


def _positions(s: pd.Series) -> tuple[pd.Series, list | None]:
    """x positions of a column: the values themselves, or 0..n-1 for text (with their tick labels)."""
    if _numeric(s):
        return s.astype(float), None
    cats = sorted(s.dropna().astype(str).unique())
    return s.astype(str).map({c: i for i, c in enumerate(cats)}).astype(float), cats


def _mark_failed(ax, trials: pd.DataFrame, x: pd.Series) -> None:
    bad = trials["status"].isin(FAILED) | ~np.isfinite(trials["val_accuracy_best"].astype(float))
    if bad.any():  # y in axes coordinates: always at the bottom edge, whatever the accuracy range
        ax.plot(x[bad], np.full(int(bad.sum()), 0.04), "x", color="red", ms=9, mew=2,
                transform=ax.get_xaxis_transform(), label=f"diverged / error ({int(bad.sum())})", clip_on=False)


def accuracy_vs_param(trials: pd.DataFrame, param: str = "lr", group: str | None = "batch_size") -> Figure | None:
    """Best validation accuracy (%) vs `param`, one line per value of `group`.

    Several trials at the same (param, group) (other hyperparameters differ): the line follows their
    max and every trial is a faint dot. A continuous group (Optuna) becomes coloured points with a
    colour bar. Diverged/error trials are a red x at the bottom. None when `param` was not searched.
    """
    if param not in trials.columns or trials.empty:
        return None
    x, ticks = _positions(trials[param])
    acc = 100 * trials["val_accuracy_best"].astype(float)
    ok = usable(trials).index
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    joined = _discrete(trials[param])
    if group is None or group not in trials.columns or group == param:
        groups = [(None, ok)]
    elif _discrete(trials[group]) or not len(ok):
        groups = [(g, idx.intersection(ok)) for g, idx in trials.groupby(group, sort=True).groups.items()]
    else:
        g = trials.loc[ok, group].astype(float)
        norm = LogNorm(g.min(), g.max()) if _log_axis(g, group) else Normalize(g.min(), g.max())
        sc = ax.scatter(x[ok], acc[ok], c=g, cmap="viridis", norm=norm, edgecolors="k", linewidths=0.4)
        fig.colorbar(sc, ax=ax, label=_label(group))
        groups = []
    for g, idx in groups:
        if not len(idx):
            continue
        best = acc[idx].groupby(x[idx]).max().sort_index()
        label = "best trial" if g is None else f"{_label(group)} {fmt_value(g)}"
        line, = ax.plot(best.index, best.values, "o-" if joined else "o", label=label, ms=6)
        if len(best) < len(idx):  # the trials behind each max
            ax.plot(x[idx], acc[idx], ".", color=line.get_color(), alpha=0.35)
    _mark_failed(ax, trials, x)
    if not len(ok):
        ax.set_ylim(0, 100)
        ax.text(0.5, 0.5, "no trial finished", transform=ax.transAxes, ha="center", color="grey")
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks)
    else:
        if _log_axis(trials[param], param):
            ax.set_xscale("log", base=2 if param == "batch_size" else 10)
        if joined:  # a grid: tick exactly the values tried
            vals = sorted(trials[param].dropna().unique())
            ax.set_xticks(vals, [fmt_value(v) for v in vals])
            ax.minorticks_off()
    ax.set_xlabel(_label(param)), ax.set_ylabel("best validation accuracy (%)")
    ax.set_title(f"Best validation accuracy vs {_label(param)} ({len(trials)} trials)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_batch(trials: pd.DataFrame) -> Figure | None:
    """Best validation accuracy vs batch size, one line per learning rate (points if lr is continuous)."""
    return accuracy_vs_param(trials, "batch_size", "lr")


def _bins(s: pd.Series, col: str, n_bins: int = 6) -> tuple[pd.Series, list[str]]:
    """Row/column index of each trial and the labels: each value when few, else log or linear bins."""
    if _discrete(s):
        vals = sorted(s.dropna().unique(), key=lambda v: (not _numeric(s), v))
        return s.map({v: i for i, v in enumerate(vals)}), [fmt_value(v) for v in vals]
    v = s.astype(float)
    lo, hi = v.min(), v.max()
    edges = np.geomspace(lo, hi, n_bins + 1) if _log_axis(v, col) else np.linspace(lo, hi, n_bins + 1)
    code = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)
    codes = pd.Series(np.where(v.isna(), np.nan, code), index=s.index)
    return codes, [f"{fmt_value(a)}–{fmt_value(b)}" for a, b in zip(edges[:-1], edges[1:])]


def heatmap(trials: pd.DataFrame, x: str = "batch_size", y: str = "lr") -> Figure | None:
    """Grid of the max best validation accuracy (%) per (x, y) cell, annotated.

    A continuous axis (Optuna, many distinct values) is binned, log-spaced for lr; cells then also
    show their trial count. A cell whose trials all diverged/failed shows a grey x. Colours cover the
    top 10 points only, so the differences that matter are visible next to a stuck trial.
    """
    if x not in trials.columns or y not in trials.columns or trials.empty:
        return None
    xi, xl = _bins(trials[x], x)
    yi, yl = _bins(trials[y], y)
    grid, count = np.full((len(yl), len(xl)), np.nan), np.zeros((len(yl), len(xl)), int)
    tried = np.zeros_like(count, dtype=bool)
    acc = 100 * trials["val_accuracy_best"].astype(float)
    ok = set(usable(trials).index)
    for i in trials.index:
        if pd.isna(xi[i]) or pd.isna(yi[i]):
            continue
        r, c = int(yi[i]), int(xi[i])
        tried[r, c] = True
        if i in ok:
            count[r, c] += 1
            grid[r, c] = np.nanmax([grid[r, c], acc[i]])
    hi = np.nanmax(grid) if np.isfinite(grid).any() else 100.0
    lo = max(np.nanmin(grid), hi - 10) if np.isfinite(grid).any() else 0.0
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(xl) + 3), 0.6 * len(yl) + 2.5))
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=lo, vmax=max(hi, lo + 1e-6), origin="lower",
                   aspect="auto")
    binned = not (_discrete(trials[x]) and _discrete(trials[y]))
    for r in range(len(yl)):
        for c in range(len(xl)):
            if np.isfinite(grid[r, c]):
                dark = (grid[r, c] - lo) / max(hi - lo, 1e-9) < 0.6
                text = f"{grid[r, c]:.2f}" + (f"\n(n={count[r, c]})" if binned or count[r, c] > 1 else "")
                ax.text(c, r, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
            elif tried[r, c]:
                ax.text(c, r, "x", ha="center", va="center", fontsize=12, color="grey")
    ax.set_xticks(range(len(xl)), xl, rotation=30 if binned else 0)
    ax.set_yticks(range(len(yl)), yl)
    ax.set_xlabel(_label(x)), ax.set_ylabel(_label(y))
    failed = (tried & ~np.isfinite(grid)).any()
    ax.set_title(f"Best validation accuracy (%) per {_label(y)} and {_label(x)}"
                 + ("\n(x: every trial there diverged or failed)" if failed else ""), fontsize=10)
    fig.colorbar(im, ax=ax, label="best validation accuracy (%)")
    fig.tight_layout()
    return fig


def top_learning_curves(epochs: pd.DataFrame, trials: pd.DataFrame, k: int = 5) -> Figure | None:
    """Validation accuracy per epoch of the k best trials (by val_accuracy_best), labelled with
    their hyperparameters. None when no trial finished or epochs.csv has none of them."""
    top = ranked(trials).head(k)
    top = top[top["trial_id"].isin(epochs["trial_id"])]
    if top.empty:
        return None
    params = hyperparameters(trials)
    fig, ax = plt.subplots(figsize=(8, 5))
    for _, t in top.iterrows():
        e = epochs[epochs["trial_id"] == t["trial_id"]].sort_values("epoch")
        hp = " ".join(f"{p}={fmt_value(t[p])}" for p in params)
        ax.plot(e["epoch"], 100 * e["val_accuracy"].astype(float), "o-" if len(e) <= 30 else "-", ms=4,
                label=f"{t['trial_id']} {hp} ({100 * t['val_accuracy_best']:.2f} %)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch"), ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Validation accuracy of the top {len(top)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def confusion_from_report(test_report: dict | None, name: str = "") -> Figure | None:
    """model.plots.confusion of test_report.json's matrix (the first retrain seed), its ticks named by
    the report's "classes" (absent in older reports: 0..K-1); None without a matrix."""
    cm = (test_report or {}).get("confusion_matrix")
    if not cm:
        return None
    from model.plots import confusion

    return confusion(np.asarray(cm), test_report.get("classes"),
                     f"Confusion matrix (test) {name}: {format_test_accuracy(test_report)}")


def predictions_grid(model, images: np.ndarray, labels: np.ndarray, mean: float, std: float,
                     classes: list[str] | tuple[str, ...] | None = None, title: str = "") -> Figure:
    """(N, H, W) images as stored (uint8 or float32) titled 'predicted/true' by class name by `model`
    (red when wrong), normalised with the training mean/std as the model saw its inputs."""
    import torch

    from data.plots import sample_grid
    from data.splits import normalise
    from model.loop import predict

    x = torch.tensor(np.asarray(images))  # a copy: normalise may scale a float tensor in place
    with torch.no_grad():
        pred = predict(model, normalise(x, mean, std)).argmax(1)
    return sample_grid(images, labels, pred.numpy(), classes=classes, title=title)


def compare_accuracy(rows: pd.DataFrame) -> Figure | None:
    """Best validation accuracy and test accuracy (mean ± std over seeds) per search, one row each.

    Dots rather than bars: the differences live in the last percent, and a bar must start at 0.
    `rows` is tuning.results.summary.compare_rows' table (fractions).
    """
    if rows.empty:
        return None
    y = np.arange(len(rows))[::-1]
    height = 1.8 + 0.55 * len(rows)
    fig, ax = plt.subplots(figsize=(8, height))
    ax.plot(100 * rows["best_val"], y + 0.1, "o", label="best validation accuracy")
    ax.errorbar(100 * rows["test_mean"], y - 0.1, xerr=100 * rows["test_std"].fillna(0), fmt="s", capsize=4,
                label="test accuracy (mean ± std over seeds)")
    ax.set_yticks(y, rows["name"])
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlabel("accuracy (%)"), ax.set_title("Searches compared")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))  # room for the legend below
    return fig
