"""The stored Optuna study: samplers, reading study.db back, the Pareto table, Optuna's plots.

No Ray here, so `python -m tuning.report` can redraw a study's plots anywhere.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from tuning.bounded_tpe import BoundedTPESampler

log = logging.getLogger(__name__)
RAY_ID = "ray_trial_id"  # user attribute linking an Optuna trial to its row in trials.csv


def make_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """Seeded samplers; TPE is multivariate (grouped, for the conditional depth) with a constant liar,
    and reads a bounded history past 1,000 finished trials (tuning/bounded_tpe.py)."""
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


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def load_study(folder: Path) -> optuna.Study | None:
    db = folder / "study.db"
    if not db.exists():
        return None
    names = optuna.get_all_study_names(storage_url(folder))
    return optuna.load_study(study_name=names[0], storage=storage_url(folder)) if names else None


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
