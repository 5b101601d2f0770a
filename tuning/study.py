"""The stored Optuna study: samplers, where the study is kept (study.log, or --storage) and reading it back, the Pareto table, Optuna's plots.

No Ray here, so `python -m tuning.report` can redraw a study's plots anywhere.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from common.errors import InputError
from tuning.bounded_tpe import BoundedTPESampler
from tuning.preflight import MARKER

log = logging.getLogger(__name__)
RAY_ID = "ray_trial_id"  # user attribute linking an Optuna trial to its row in trials.csv


def make_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """Seeded samplers; TPE is multivariate (grouped, for the conditional depth) with a constant liar,
    and reads a bounded history past bounded_tpe.THRESHOLD finished trials (tuning/bounded_tpe.py)."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # CMA-ES handles only float/int parameters; TPE samples the categorical ones
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                            independent_sampler=optuna.samplers.TPESampler(seed=seed))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return BoundedTPESampler(seed=seed, multivariate=True, group=True, constant_liar=not multi_objective)


JOURNAL = "study.log"  # the study: Optuna's journal file, one appended JSON line per change
SQLITE = "study.db"  # where searches before the journal kept it (still read)


def journal_storage(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's journal file: an append per change, 10-20x cheaper per ask, report and tell than
    SQLite's transactions (benchmarks/README.md, Scale), and read by optuna.load_study and optuna-dashboard."""
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def recorded_url(folder: Path) -> str | None:
    """The --storage URL the search in `folder` ran with (search.json), or None: the study is in the folder."""
    try:
        return json.loads((folder / MARKER).read_text())["search"].get("storage")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def open_storage(folder: Path, url: str | None = None) -> optuna.storages.BaseStorage | None:
    """The storage of the study of the search in `folder`: --storage's database, else the journal
    file there (or an older search's study.db); None where the folder holds no study yet."""
    url = url or recorded_url(folder)
    if url:
        return optuna.storages.RDBStorage(url)
    if (folder / SQLITE).exists() and not (folder / JOURNAL).exists():
        return optuna.storages.RDBStorage(f"sqlite:///{(folder / SQLITE).resolve()}")
    return journal_storage(folder / JOURNAL) if (folder / JOURNAL).exists() else None


def load_study(folder: Path, url: str | None = None) -> optuna.Study | None:
    """The search's study (named after its folder), or None where there is none yet."""
    storage = open_storage(folder, url)
    if storage is None:
        return None
    names = optuna.get_all_study_names(storage)
    name = folder.name if folder.name in names else (names[0] if len(names) == 1 and not url else None)
    return optuna.load_study(study_name=name, storage=storage) if name else None


def shown(url: str) -> str:
    """A storage URL fit for messages: its password masked."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — not a URL at all: say it as given
        return url


def check_url(url: str, name: str, resume: bool, overwrite: bool) -> None:
    """--storage must open, and hold a study of this name exactly when --resume says so (or --overwrite
    replaces it); checked before anything is created. Opening creates Optuna's tables in a new database."""
    try:
        names = optuna.get_all_study_names(optuna.storages.RDBStorage(url))
    except Exception as e:  # noqa: BLE001 — a bad URL, a missing driver, a database that does not answer
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"--storage {shown(url)}: cannot open it as an Optuna storage ({why[:200]})") from None
    if resume and name not in names:
        raise InputError(f"--resume: --storage {shown(url)} holds no study named {name!r}")
    if not resume and not overwrite and name in names:
        raise InputError(f"--storage {shown(url)} already holds a study named {name!r}: continue it with --resume, "
                         "replace it with --overwrite, or choose another --name")


def fail_orphans(study: optuna.Study) -> int:
    """Trials left RUNNING by a killed driver will never report: mark them FAIL (none is rerun)."""
    orphans = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in orphans:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(orphans)


def pareto_table(study: optuna.Study, objectives: list[str]) -> pd.DataFrame:
    """The non-dominated trials, most accurate first."""
    rows = [{"number": t.number, RAY_ID: t.user_attrs.get(RAY_ID), **dict(zip(objectives, t.values)), **t.params}
            for t in study.best_trials]
    return pd.DataFrame(rows).sort_values(objectives[0], ascending=False, ignore_index=True)


def optuna_figures(study: optuna.Study) -> list[tuple[str, Any]]:
    """Optuna's own matplotlib plots of the stored study: (file name, Figure) pairs."""
    from common.plotting import plt  # noqa: F401 — the headless backend, before Optuna loads pyplot
    from optuna.visualization import matplotlib as ov

    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    tname = "val_accuracy"
    plots: list[tuple[str, Any]] = []
    jobs = [
        ("optuna_history.png", lambda: ov.plot_optimization_history(study, target=target, target_name=tname)),
        ("optuna_importances.png", lambda: ov.plot_param_importances(study, target=target, target_name=tname)),
        ("optuna_parallel.png", lambda: ov.plot_parallel_coordinate(study, target=target, target_name=tname)),
        ("optuna_slices.png", lambda: ov.plot_slice(study, target=target, target_name=tname)),
    ]
    if multi:
        jobs.append(("pareto_front.png", lambda: ov.plot_pareto_front(study, target_names=study.user_attrs.get("objectives", ["val_accuracy", "second"]))))
    else:
        jobs.append(("optuna_intermediate.png", lambda: ov.plot_intermediate_values(study)))
    for name, draw in jobs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw()
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            legend = ax.get_legend() if hasattr(ax, "get_legend") else None
            if legend is not None and len(legend.legend_handles) > 10:  # a legend per trial outgrows the figure
                legend.remove()
            plots.append((name, fig))
        except Exception as e:  # noqa: BLE001 — e.g. importances need >= 2 complete trials
            log.info("skipped %s: %s", name, e)
    return plots
