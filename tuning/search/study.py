"""The stored Optuna study: samplers, where the study is kept (study.log, or --storage) and reading it back, the Pareto table, Optuna's plots.

No Ray here, so `python -m tuning.report` can redraw a study's plots anywhere.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
import pandas as pd

from common.errors import InputError
from common.secrets import masked, shown
from tuning.search.sampler import BoundedTPESampler
from common.folders import SEARCH_MARKER

log = logging.getLogger(__name__)
RAY_ID = "ray_trial_id"  # user attribute linking an Optuna trial to its row in trials.csv


def make_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """Seeded samplers; TPE is multivariate (grouped, for the conditional depth) with a constant liar,
    and reads a bounded history past sampler.THRESHOLD finished trials (tuning/search/sampler.py)."""
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
    """Optuna's journal file: an append per change, much cheaper per ask, report and tell than
    SQLite's transactions (benchmarks/README.md, Scale), and read by optuna.load_study and optuna-dashboard."""
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def recorded_url(folder: Path) -> str | None:
    """The --storage URL the search in `folder` ran with (search.json), or None: the study is in the folder."""
    try:
        return json.loads((folder / SEARCH_MARKER).read_text())["search"].get("storage")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def open_storage(folder: Path, url: str | None = None) -> optuna.storages.BaseStorage | None:
    """The storage of the study of the search in `folder`: --storage's database, else the journal
    file there (or an older search's study.db); None where the folder holds no study yet."""
    if url:
        return rdb_storage(url)
    if recorded := recorded_url(folder):  # reading a finished search (tuning.report): never create its tables
        return rdb_storage(recorded, skip_table_creation=True)
    if (folder / SQLITE).exists() and not (folder / JOURNAL).exists():
        return optuna.storages.RDBStorage(f"sqlite:///{(folder / SQLITE).resolve()}")
    return journal_storage(folder / JOURNAL) if (folder / JOURNAL).exists() else None


def load_study(folder: Path, url: str | None = None) -> optuna.Study | None:
    """The search's study (named after its folder), or None where there is none yet.

    A database given as `url` (--storage) that does not open is one InputError; one only recorded in
    search.json (tuning.report, perhaps on another machine) is a warning, and None: the rest of the
    report does not need it."""
    try:
        storage = open_storage(folder, url)
    except InputError as e:
        if url:
            raise
        log.warning("%s: no Optuna plots: the study's database, recorded in %s, does not open (%s)",
                    folder, SEARCH_MARKER, e)
        return None
    if storage is None:
        return None
    names = optuna.get_all_study_names(storage)
    name = folder.name if folder.name in names else (names[0] if len(names) == 1 and not url else None)
    return optuna.load_study(study_name=name, storage=storage) if name else None


def _why(e: BaseException, url: str) -> str:
    """An exception's first line, masked, for a one-line message."""
    text = str(e).strip()
    why = text.splitlines()[0] if text else type(e).__name__
    if isinstance(e, ImportError):
        why += ": install the database's Python driver"
    return masked(why, url)[:200]


def _cannot_open(url: str, e: BaseException) -> InputError:
    return InputError(f"--storage {shown(url)}: cannot open it as an Optuna storage ({_why(e, url)})")


def rdb_storage(url: str, **kw: Any) -> optuna.storages.RDBStorage:
    """Optuna's storage in --storage's database (created with its tables where missing); any failure
    is one InputError with the URL masked, never a traceback that may print it."""
    try:
        return optuna.storages.RDBStorage(url, **kw)
    except Exception as e:  # noqa: BLE001 — a bad URL, a missing driver, a database that does not answer
        raise _cannot_open(url, e) from None


def _sqlite_file(url: str) -> Path | None:
    """The file of a sqlite URL, or None for another database; an in-memory one is refused (each
    connection would get a new, empty one: the study would be lost between the search's steps)."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception as e:  # noqa: BLE001 — not a URL SQLAlchemy can parse
        raise _cannot_open(url, e) from None
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:" or u.query.get("mode") == "memory":
        raise InputError(f"--storage {shown(url)}: an in-memory database loses the study between "
                         "connections; give a file, e.g. sqlite:///study.db")
    return Path(u.database)


def _engine_kwargs(url: str, sqlite_file: Path | None) -> dict[str, Any]:
    """create_engine's arguments for the check: a sqlite file is opened read-only (opening it for
    writing would make it where it is missing, and could change it); other databases get a
    connection timeout where the driver takes one, so an unanswering host is refused in seconds."""
    import sqlite3

    from sqlalchemy.engine import make_url

    if sqlite_file is not None:
        uri = f"file:{quote(str(sqlite_file.resolve()))}?mode=ro"
        return {"creator": lambda: sqlite3.connect(uri, uri=True)}
    u = make_url(url)
    if u.get_driver_name() in ("psycopg2", "psycopg", "pymysql", "mysqldb") and "connect_timeout" not in u.query:
        return {"connect_args": {"connect_timeout": 10}}
    return {}


def study_names(url: str) -> list[str]:
    """The studies in --storage's database, read without creating or changing anything: a sqlite file
    that does not exist holds none (its folder must take it); a database without Optuna's tables
    holds none (they are created when the search starts, after every check)."""
    import sqlalchemy

    path = _sqlite_file(url)
    if path is not None:
        folder = path.parent
        if path.is_dir():
            raise InputError(f"--storage {shown(url)}: {path} is a folder, not a database file")
        if not path.exists():
            if not folder.is_dir():
                raise InputError(f"--storage {shown(url)}: the folder {folder} does not exist")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(f"--storage {shown(url)}: the folder {folder} is not writable")
            return []
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"--storage {shown(url)}: {path} or its folder is not writable")
    engines = []
    try:
        kw = _engine_kwargs(url, path)
        engines.append(sqlalchemy.create_engine(url, **kw))
        if not sqlalchemy.inspect(engines[0]).has_table("studies"):  # none of Optuna's tables: no study
            return []
        # Optuna's tables are there: its storage creates none, and (sqlite) cannot write
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kw, skip_table_creation=True)
        engines.append(storage.engine)
        return optuna.get_all_study_names(storage)
    except Exception as e:  # noqa: BLE001 — a missing driver, a database that does not answer, not a database
        raise _cannot_open(url, e) from None
    finally:
        for engine in engines:
            engine.dispose()


def check_url(url: str, name: str, resume: bool, overwrite: bool) -> None:
    """--storage must open, and hold a study of this name exactly when --resume says so (or --overwrite
    replaces it); checked before anything is created, and creating nothing itself: a refused command
    leaves no database (nor Optuna's tables in one) behind."""
    names = study_names(url)
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
