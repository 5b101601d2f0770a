"""`python -m tuning.optuna --trials 50`: Optuna (seeded multivariate TPE) on Ray Tune with ASHA.

The study lives in results/<name>/study.log, Optuna's journal file, or in --storage's database
(optuna.load_study / optuna-dashboard read either): ASHA's
stops are PRUNED, diverged trials FAILED, finished ones COMPLETE with per-epoch intermediate
values. The notebook's best (lr 0.1, batch 16) is trial 0. `--objectives accuracy,params` (or
accuracy,latency) searches a Pareto front instead, without ASHA.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna  # the library: this module is tuning.optuna, imported by absolute name only

from common.atomic import atomic_write
from common.cli import run_cli
from common.errors import InputError
from tuning.driver.cli import Finished, SearchKind, params_of, retrain, run_search
from tuning.driver.preflight import check_journal, check_study_db
from model.config import TrainConfig
from tuning.driver.runner import METRIC, Search, SearchConfig, scheduler_name
from tuning.search.space import DEPTH, NOTEBOOK_BEST, WIDTH, DefineByRun, Param, SearchSpace, apply_params, encode_sizes
from tuning.search.searcher import StudySearch
from tuning.search.study import (JOURNAL, SQLITE, check_url, fail_orphans, journal_storage, load_study, make_sampler,
                          open_storage, pareto_table)

SECOND_OBJECTIVE = {"params": ("params", "min"), "latency": ("latency_ms", "min")}


@dataclass
class OptunaConfig(SearchConfig):
    space: str = "optuna"
    """Search-space YAML: a path, or a name in search_spaces/ (optuna; optuna_plain = without augmentation; grid)."""
    trials: int = 50
    """Trials in the study in all (--resume continues until there are this many)."""
    timeout: float | None = None
    """End the search after this many seconds: running trials stop where they are (stopped_early), every
    finished epoch is kept, and the best so far is retrained (not with --deterministic)."""
    sampler: Literal["tpe", "random", "cmaes", "nsga2"] = "tpe"
    """Optuna sampler; nsga2 is for --objectives with two objectives."""
    objectives: str = "accuracy"
    """'accuracy', or a Pareto search: 'accuracy,params' or 'accuracy,latency' (ms per 1,000 images)."""
    scheduler: Literal["asha", "sync", "fifo"] = "sync"
    """sync (the default here) pauses each trial at a rung until its cohort of --suggest-batch trials has
    reported there, and runs new trials before promoted ones: the first trials no longer get the whole
    budget for want of company, and most trials end early in the search; asha stops weak trials at
    rungs as they arrive; fifo runs every trial to the end."""
    grace_period: int = 3
    """Epochs every trial gets before ASHA may stop it (augmented trials start slower)."""
    reduction_factor: float = 4
    """ASHA keeps the top 1/reduction_factor at each rung: 4 (rungs 3, 12, 48), because TPE's later
    trials are better than its first, and asynchronous ASHA promotes most of a rising sequence."""
    suggest_batch: int = 16
    """The sync scheduler compares this many consecutive trials at its rungs (one trial of each such
    cohort runs to the last epoch); under --deterministic they are also asked together, each batch
    seeing only batches that have ended."""
    warm_start: bool = True
    """Evaluate the notebook's best configuration (lr 0.1, batch 16) as trial 0, as far as the space
    allows it (the default space has no batch 16: TPE picks trial 0's batch size)."""
    storage: str | None = None
    """Optuna storage URL for the study (postgresql://..., mysql://..., sqlite:///...), for other processes to
    read it live; default: the journal file study.log in results/<name>/. Recorded in search.json."""
    chunk_trials: int = 2000
    """Trials per Ray experiment: a larger --trials runs as several experiments (tune/, tune-2/, ...) on
    one study, so that Ray's experiment state, which it rewrites whole at each save, stays bounded."""

    def validate(self) -> "OptunaConfig":
        super().validate()
        if self.trials < 1:
            raise InputError(f"--trials {self.trials}: must be >= 1")
        if self.timeout is not None and self.timeout <= 0:
            raise InputError(f"--timeout {self.timeout}: must be > 0 seconds")
        if self.chunk_trials < 1:
            raise InputError(f"--chunk-trials {self.chunk_trials}: must be >= 1")
        if self.suggest_batch < 1:
            raise InputError(f"--suggest-batch {self.suggest_batch}: must be >= 1")
        if self.timeout is not None and self.deterministic:
            raise InputError(f"--timeout {self.timeout}: trials started within a time limit depend on the "
                             "machine's speed; it cannot be used with --deterministic")
        parts = self.objective_list()
        if parts[0] != "accuracy" or len(parts) > 2 or (len(parts) == 2 and parts[1] not in SECOND_OBJECTIVE):
            raise InputError(f"--objectives {self.objectives}: use accuracy, accuracy,params or accuracy,latency")
        return self

    def objective_list(self) -> list[str]:
        return [p.strip() for p in self.objectives.split(",") if p.strip()]


def metrics_and_modes(cfg: OptunaConfig) -> tuple[list[str], list[str]]:
    metrics, modes = [METRIC], ["max"]
    for o in cfg.objective_list()[1:]:
        metrics.append(SECOND_OBJECTIVE[o][0])
        modes.append(SECOND_OBJECTIVE[o][1])
    return metrics, modes


def optuna_search(cfg: OptunaConfig, space: SearchSpace, base: TrainConfig, out: Path) -> Search:
    from ray.tune.search import ConcurrencyLimiter

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics, modes = metrics_and_modes(cfg)
    multi = len(metrics) > 1
    if cfg.overwrite and cfg.storage and load_study(out, cfg.storage) is not None:  # --overwrite: replace it
        optuna.delete_study(study_name=out.name, storage=open_storage(out, cfg.storage))
    stored = load_study(out, cfg.storage)  # adding trials to a study (a chunk, a top-up): seed past its trials, or a
    done = len(stored.trials) if stored else 0  # random sampler would repeat its first suggestions
    seed = cfg.seed + done
    points = [w for w in [_warm_start(space, base)] if w] if cfg.warm_start and not done and not cfg.resume else None
    runs = min(cfg.trials, cfg.chunk_trials)
    searcher = StudySearch(
        space=DefineByRun(space), metric=metrics if multi else metrics[0], mode=modes if multi else modes[0],
        points_to_evaluate=points, sampler=make_sampler(cfg.sampler, seed, multi),
        study_name=out.name, storage=open_storage(out, cfg.storage) or journal_storage(out / JOURNAL), seed=seed,
        max_epochs=base.epochs, batch=cfg.suggest_batch if cfg.deterministic else 0, total=runs,
    )
    searcher.study.set_user_attr("objectives", metrics)
    import ray

    slots = int(ray.cluster_resources().get("CPU", 1) // cfg.cpus_per_trial) or 1
    # sync halving compares one batch at a time; its trials paused at a rung hold no slot but are live
    # here, so new trials are not held back by them (they run first: the long trials come last)
    cohort = cfg.suggest_batch if scheduler_name(cfg) == "sync" else 0
    live = max(cfg.max_concurrent or (runs if cohort else slots), cohort)
    limited = ConcurrencyLimiter(searcher, max_concurrent=live)
    # trials are asked as slots free up, so that each suggestion sees the results so far
    return Search(search_alg=limited, num_samples=runs, planned=cfg.trials, pareto=multi,
                  measure_latency="latency_ms" in metrics, time_budget_s=cfg.timeout,
                  cohort=cohort, max_pending=slots, protected=frozenset({0}) if points else frozenset())


WARM_START = {"sgd": NOTEBOOK_BEST, "adamw": {"lr": 1e-3}}
"""Trial 0's values by its optimiser, where the space allows them: SGD (preferred) at the notebook's
best; AdamW, where the space has no SGD, at torch's default rate. Momentum and the rest come from the
base config, so lr 0.1 is never paired with AdamW."""


def _allowed(p: Param, v: Any) -> Any:
    """`v` as the space can take it: itself, clipped into a range, or (not a choice) None."""
    if p.distribution == "categorical" or p.distribution is None:
        choices = [encode_sizes(c) for c in (p.choices or p.values or [])]
        return encode_sizes(v) if encode_sizes(v) in choices else None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = min(max(v, p.low), p.high)
    if p.distribution != "int":
        return float(v)
    step = int(p.step or 1)
    return int(p.low + min(round((v - p.low) / step), (p.high - p.low) // step) * step)


def _warm_start(space: SearchSpace, base: TrainConfig | None = None) -> dict:
    """Trial 0: a value for every parameter the space searches, so its accuracy is that of one whole,
    sensible configuration: WARM_START for its optimiser where the space allows it, else the base
    config's value (the space's fixed settings over TrainConfig's defaults), clipped into the space's
    range; a categorical the base value is not a choice of takes its first choice. The depth and
    widths follow base.hidden_sizes."""
    base = base or space.base_config()
    point: dict[str, Any] = {}
    if "optimizer" in space.params:
        p = space.params["optimizer"]
        point["optimizer"] = next((v for v in ("sgd", base.optimizer) if _allowed(p, v) is not None),
                                  (p.choices or p.values)[0])
    warm = WARM_START.get(point.get("optimizer", base.optimizer), {})
    for name, p in space.params.items():
        if name in point or name == WIDTH:  # the optimiser is chosen; widths go with the depth
            continue
        if name == DEPTH:
            depth = _allowed(p, len(base.hidden_sizes))
            point[DEPTH] = depth
            for i in range(1, depth + 1):
                width = base.hidden_sizes[min(i, len(base.hidden_sizes)) - 1]
                point[f"{WIDTH}_{i}"] = _allowed(space.params[WIDTH], width)
            continue
        if name in warm and _allowed(p, warm[name]) == warm[name]:  # as it is, not clipped
            point[name] = warm[name]
            continue
        got = _allowed(p, getattr(base, name))
        point[name] = got if got is not None else encode_sizes((p.choices or p.values)[0])
    return point


def after_search(f: Finished) -> None:
    """Study upkeep, then (multi-objective only) pareto.csv and the smallest near-best retrain."""
    cfg: OptunaConfig = f.cfg  # type: ignore[assignment]
    study = load_study(f.out, cfg.storage)
    orphans = fail_orphans(study)  # asked just before a killed driver died, never started by Ray
    if orphans:
        print(f"marked {orphans} trial(s) FAIL in the study: asked, but never run before the interrupt or the "
              "--timeout deadline")
    if len(cfg.objective_list()) < 2:
        return
    metrics, _ = metrics_and_modes(cfg)
    table = pareto_table(study, metrics)
    atomic_write(f.out / "pareto.csv", lambda p: table.to_csv(p, index=False))
    near = table[table[METRIC] >= table[METRIC].iloc[0] - 0.003]
    small = near.sort_values(metrics[1]).iloc[0]
    if cfg.retrain and small["ray_trial_id"] != table["ray_trial_id"].iloc[0]:
        small_cfg = apply_params(f.base, params_of(f.results, small["ray_trial_id"]))
        retrain(f.out, small_cfg, f.data, cfg, f.space, suffix="_small")
    print(f"Pareto front: {len(table)} trials (pareto.csv); smallest within 0.3 points: "
          f"trial {small['ray_trial_id']} ({metrics[1]} {small[metrics[1]]:.4g}, val {100 * small[METRIC]:.2f} %)")


def check_study(cfg: OptunaConfig, out: Path) -> None:
    """The study a search will write: --storage opens (and holds this study exactly when resuming),
    or on --resume the folder's study file is whole."""
    if cfg.storage:
        check_url(cfg.storage, out.name, cfg.resume, cfg.overwrite)
    elif cfg.resume:
        if (out / SQLITE).exists() and not (out / JOURNAL).exists():  # a search from before the journal
            check_study_db(out / SQLITE)
        else:
            check_journal(out / JOURNAL)


OPTUNA = SearchKind("optuna", __doc__, OptunaConfig(), optuna_search, check=check_study, after=after_search,
                    extendable=True)


def main(argv: list[str] | None = None) -> int:
    return run_search(OPTUNA, argv)


if __name__ == "__main__":
    run_cli(main)
