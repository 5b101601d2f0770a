"""Which plots a results folder gets: the built-in ones drawn from its tables, the predictions of its
saved model, and Optuna's own plots of its study. `redraw` saves them.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

from common.atomic import save_figure
from common.errors import InputError
from tuning.results.tableio import one_line
from tuning.results.tables import Tables
from tuning.search.space import decode_sizes

log = logging.getLogger(__name__)

PlotFn = Callable[[Tables], Any]  # Tables -> matplotlib Figure, or None when the plot makes no sense


def standard_plots() -> list[tuple[str, PlotFn]]:
    """(filename, function) of every built-in plot; imported lazily so text needs no matplotlib."""
    from tuning.results import plots as p

    return [
        ("val_acc_vs_lr.png", lambda t: p.accuracy_vs_param(t.trials, "lr", "batch_size")),
        ("val_acc_vs_batch.png", lambda t: p.accuracy_vs_batch(t.trials)),
        ("heatmap_lr_batch.png", lambda t: p.heatmap(t.trials, "batch_size", "lr")),
        ("learning_curves.png", lambda t: p.top_learning_curves(t.epochs, t.trials)),
        ("confusion.png", lambda t: p.confusion_from_report(t.test_report, t.name)),
        ("predictions.png", predictions_plot),
    ]


def search_data(t: Tables) -> Any:
    """The DataConfig the search ran on (search.json), defaults for fields an older folder lacks."""
    import dataclasses

    from data.source import DataConfig

    saved = (t.search_info or {}).get("data") or {}
    known = {f.name for f in dataclasses.fields(DataConfig)}
    return DataConfig(**{k: v for k, v in saved.items() if k in known})


def _stored_data(t: Tables) -> Any:
    """The data set (data.dataset.Dataset) the search ran on, read again from its source."""
    from data.source import load_dataset

    return load_dataset(search_data(t))


def load_model(t: Tables, stored: Callable[[], Any] | None = None) -> Any:
    """model.pt as model.mlp.MLP: from its card (model.json) when there is one; in older folders from
    best.json's config, at the image shape and classes of test_report.json, or, where it lacks them, of
    the data set the search ran on (`stored()`, read from search.json's data when not given); None
    when a file is missing."""
    path = t.folder / "model.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        from model.card import load

        return load(path).model
    if not path.is_file() or not (t.best or {}).get("config"):
        return None
    import dataclasses

    import torch

    from model.config import TrainConfig
    from model.mlp import MLP

    cfg = dict(t.best["config"])
    if "hidden_sizes" in cfg:  # tolerate the trials.csv spelling "512-256"
        cfg["hidden_sizes"] = decode_sizes(cfg["hidden_sizes"])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    report = t.test_report or {}
    if "image_shape" not in report or "classes" not in report:
        data = stored() if stored is not None else _stored_data(t)
        report = {"image_shape": data.image_shape, "classes": data.classes, **report}
    h, w = report["image_shape"]
    classes = len(report["classes"])
    model = MLP(TrainConfig(**{k: v for k, v in cfg.items() if k in known}).mlp(h * w, classes))
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, ValueError) as e:
        raise InputError(f"{path}: does not load into the MLP of best.json's config ({one_line(e)[:200]})") from e
    return model.eval()


def predictions_plot(t: Tables, n: int = 32) -> Any:
    """The first n test images of the search's data, 'predicted/true' by the saved best model, normalised
    as its retrain was (test_report.json; older folders: recomputed over the training images)."""
    stored = functools.cache(lambda: _stored_data(t))  # read once, and only when a model is there
    model = load_model(t, stored)
    if model is None:
        return None
    from data.splits import mean_std
    from tuning.results.plots import predictions_grid

    import torch

    data = stored()
    norm = (t.test_report or {}).get("normalisation")
    mean, std = (norm["mean"], norm["std"]) if norm else mean_std(torch.from_numpy(data.train_x))
    trial = (t.best or {}).get("trial_id")  # best.json may have been deleted; model.json suffices
    title = "predicted / true (test), " + (f"best trial {trial}" if trial else "the retrained model")
    return predictions_grid(model, data.test_x[:n], data.test_y[:n], mean, std, data.classes, title=title)


def figures(tables: Tables) -> Iterator[tuple[str, Any]]:
    """(file name, Figure) of every plot that makes sense for this folder, one at a time (the caller
    saves and closes each before the next is drawn)."""
    for filename, draw in standard_plots():
        fig = draw(tables)
        if fig is None:
            log.info("%s: skipped (not enough data)", filename)
            continue
        yield filename, fig
    if (tables.search_info or {}).get("kind") == "optuna":  # its own plots, from the stored study
        from tuning.search.study import load_study, optuna_figures

        study = load_study(tables.folder)
        yield from (optuna_figures(study) if study else [])


def redraw(folder: str | Path, tables: Tables, out: str | Path | None = None) -> list[Path]:
    """Write every plot that makes sense into <folder>/plots/ (or `out`), atomically; return the paths."""
    out = Path(out) if out is not None else Path(folder) / "plots"
    return [save_figure(fig, out / name) for name, fig in figures(tables)]
