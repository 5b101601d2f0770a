"""Building, running and restoring the Ray Tune `Tuner`, shared by the grid and Optuna CLIs."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.errors import FieldError, InputError
from data.splits import Splits
from model.config import TrainConfig
from tuning.resume import ledger
from tuning.search.budget import MIN_RUNG_STEPS
from tuning.resume.checkpoints import CHECKPOINT_AFTER_S
from tuning.resume.ledger import Carry
from tuning.resume.pruning import checkpoint_pruner
from tuning.driver.ray_env import no_json_logger, pending_trials, state_saves
from tuning.resume.state_backup import backup_callback
from tuning.results.tensorboard import tensorboard_logger

log = logging.getLogger(__name__)
METRIC, MODE = "val_accuracy", "max"
EXPERIMENT = "tune"  # Ray's folder inside the storage path: trial dirs, checkpoints, TensorBoard logs


@dataclass
class SearchConfig:
    """How a search runs (not what it searches: that is the search-space file)."""

    space: str = "grid"
    """Search-space YAML: a path, or a name in search_spaces/ (grid, optuna)."""
    epochs: int | None = None
    """Max epochs per trial (ASHA's max_t); default: the space's fixed.epochs."""
    scheduler: Literal["asha", "sync", "fifo"] = "asha"
    """asha stops weak trials at rungs as they arrive; sync pauses each trial at a rung until its cohort
    has reported there (decisions that do not depend on timing); fifo runs every trial to the end."""
    grace_period: int = 1
    """Epochs every trial gets before ASHA may stop it."""
    reduction_factor: float = 3
    """ASHA keeps the top 1/reduction_factor of trials at each rung."""
    min_rung_steps: int = MIN_RUNG_STEPS
    """Optimiser steps (at the space's largest batch) before any rung judges a trial: on small data sets
    the first rung moves later than --grace-period (0: rungs at --grace-period, whatever the data)."""
    cpus_per_trial: float = 1
    """CPUs per trial; torch threads follow it."""
    gpus_per_trial: float = 0
    """GPUs per trial; fractions pack trials on one GPU (0.25 = four per GPU)."""
    max_concurrent: int = 0
    """Cap on trials running at once; 0 = as many as the resources allow."""
    address: str | None = None
    """Join an existing Ray cluster ('auto' or HOST:PORT); default: start a local Ray."""
    storage_path: str | None = None
    """Where Ray keeps trial dirs/checkpoints (shared storage on a cluster); default results/<name>."""
    name: str | None = None
    """Results folder name under --results-dir; default: the search kind (grid, optuna)."""
    results_dir: str = "results"
    """Folder holding every search's results/<name>/."""
    seed: int = 0
    """Seeds trials, the split and the searcher."""
    resume: bool = False
    """Continue the search of the same --name: an interrupted one finishes (finished trials are not
    rerun); a finished Optuna study grows to --trials."""
    overwrite: bool = False
    """Delete an existing results/<name>/ first instead of refusing."""
    retrain: bool = True
    """Retrain the best configuration on all training images and test it (--no-retrain skips)."""
    retrain_seeds: int = 1
    """Seeds of the retrain; the report gives mean and std over them."""
    ensemble: int = 0
    """Also save a committee of K nets averaging their probabilities (committee.pt, for model.predict and
    model.export): the best configuration's first K retrain seeds (K seeds are retrained at least), or
    the K best configurations (--ensemble-of). test_report.json gives the single nets' and the
    committee's accuracy. 0: none."""
    ensemble_of: Literal["seeds", "configs"] = "seeds"
    """What the committee's nets differ in: the retrain seed, or the configuration (the K best trials)."""
    deterministic: bool = False
    """Same seed and data, same trials, stops, best configuration and retrain, on an idle machine or a
    busy one: asha becomes sync, Optuna suggests in batches, precision auto becomes fp32."""
    max_failures: int = 2
    """Retries of a trial whose worker dies, each from its last checkpoint."""
    checkpoint_s: float = CHECKPOINT_AFTER_S
    """A trial checkpoints at the scheduler's rungs, at its last epoch, and after this many seconds since
    its last checkpoint: the most training a retry or --resume redoes (0: every epoch)."""
    ray_output: bool = False
    """Show Ray's own progress tables and worker logs."""

    def validate(self) -> "SearchConfig":
        rules = [
            ("epochs", self.epochs is None or self.epochs >= 1, "must be >= 1"),
            ("grace_period", self.grace_period >= 1, "must be >= 1"),
            ("min_rung_steps", self.min_rung_steps >= 0, "must be >= 0"),
            ("reduction_factor", self.reduction_factor > 1, "must be > 1"),
            ("cpus_per_trial", self.cpus_per_trial > 0, "must be > 0"),
            ("gpus_per_trial", self.gpus_per_trial >= 0, "must be >= 0"),
            ("max_concurrent", self.max_concurrent >= 0, "must be >= 0"),
            ("retrain_seeds", self.retrain_seeds >= 1, "must be >= 1"),
            ("ensemble", self.ensemble == 0 or self.ensemble >= 2, "must be 0 (none) or >= 2 nets"),
            ("max_failures", self.max_failures >= 0, "must be >= 0"),
            ("checkpoint_s", self.checkpoint_s >= 0, "must be >= 0"),
        ]
        for name, ok, why in rules:
            if not ok:
                raise FieldError(name, getattr(self, name), why)
        if self.gpus_per_trial > 0 and not self.address:
            import torch

            if not torch.cuda.is_available():
                raise InputError(f"--gpus-per-trial {self.gpus_per_trial}: no GPU on this machine "
                                 "(use --address to reach a cluster with GPUs)")
        if self.ensemble and not self.retrain:
            raise InputError(f"--ensemble {self.ensemble}: the committee is made by the retrain; drop --no-retrain")
        if self.resume and self.overwrite:
            raise InputError("--resume and --overwrite contradict each other: pick one")
        return self


@dataclass
class Search:
    """What a search kind (tuning/grid.py, tuning/optuna.py) hands the shared driver (tuning/driver/cli.py)."""

    search_alg: Any
    """Ray's searcher: a BasicVariantGenerator of grid points, or Optuna's StudySearch."""
    num_samples: int
    """Trials this Ray experiment runs: the plan that search.json and the progress bar count."""
    param_space: dict | None = None
    """Ray's param_space, where the searcher needs one (the grid names each parameter's values)."""
    pareto: bool = False
    """Several objectives: trials are compared whole (no early stopping) and Ray gets no single metric."""
    measure_latency: bool = False
    """Trials time inference once (the latency objective)."""
    time_budget_s: float | None = None
    """Stop starting trials after this many seconds (Optuna's --timeout)."""
    cohort: int = 0
    """Trials the sync scheduler compares at each rung; 0: all of them."""
    max_pending: int = 0
    """Trials Ray asks the searcher for ahead of a free slot; 0: Ray's own choice (200 or more)."""
    planned: int = 0
    """Trials of the whole search where several Ray experiments run it (Optuna's --chunk-trials); 0: num_samples."""
    protected: frozenset[int] = frozenset()
    """Trials (by creation index) the sync scheduler never stops: Optuna's warm start, trial 0."""


def scheduler_name(cfg: SearchConfig) -> str:
    """--deterministic turns asha into sync (asha's decisions depend on arrival order)."""
    return "sync" if cfg.deterministic and cfg.scheduler == "asha" else cfg.scheduler


def make_scheduler(cfg: SearchConfig, max_epochs: int, total: int, cohort: int,
                   protected: frozenset[int] = frozenset()):
    """`cohort`: trials the sync scheduler compares together (the grid: all; Optuna: one batch);
    `protected`: trials it keeps at every rung."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from tuning.search.halving import SyncHalving

    name = scheduler_name(cfg)
    if name == "fifo":
        return FIFOScheduler()
    if name == "sync":
        return SyncHalving(max_epochs, min(cfg.grace_period, max_epochs), cfg.reduction_factor, cohort, total,
                           metric=METRIC, protected=protected)
    # time_attr epoch: a trial continued from a checkpoint keeps its epoch count (Ray's iteration restarts)
    return ASHAScheduler(time_attr="epoch", max_t=max_epochs,
                         grace_period=min(cfg.grace_period, max_epochs), reduction_factor=cfg.reduction_factor)


def storage_dir(cfg: SearchConfig, out: Path) -> Path:
    return Path(cfg.storage_path).expanduser().resolve() if cfg.storage_path else out.resolve()


def checkpoint_rungs(cfg: SearchConfig, max_epochs: int, pareto: bool) -> frozenset[int]:
    """The epochs where the scheduler compares trials (and sync pauses them): trials checkpoint there."""
    from tuning.search.halving import rung_epochs

    if pareto or scheduler_name(cfg) == "fifo":
        return frozenset()
    return frozenset(rung_epochs(max_epochs, min(cfg.grace_period, max_epochs), cfg.reduction_factor))


def make_trainable(cfg: SearchConfig, splits: Splits, base: TrainConfig, search: Search, experiment: Path,
                   carry: Carry | None = None):
    """`experiment`: the storage folder whose trial checkpoints a resumed trial reads (tuning/resume/checkpoints.py);
    `carry`: on --resume, which trials ended and which ones Ray's saved state lost (tuning/resume/ledger.py)."""
    from ray import tune

    from tuning.driver.trainable import train_trial

    resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}
    rungs = checkpoint_rungs(cfg, base.epochs, search.pareto)
    return tune.with_resources(tune.with_parameters(train_trial, splits=splits, base=base,
                                                    measure_latency=search.measure_latency,
                                                    experiment=str(experiment), rungs=rungs, carry=carry,
                                                    checkpoint_s=cfg.checkpoint_s), resources)


def experiments(cfg: SearchConfig, out: Path) -> list[Path]:
    """This search's Ray experiment folders, oldest first: tune/, then tune-2/, ... (one per top-up)."""
    root = storage_dir(cfg, out)
    found = [p for p in root.glob(f"{EXPERIMENT}*") if p.is_dir() and re.fullmatch(rf"{EXPERIMENT}(-\d+)?", p.name)]
    return sorted(found, key=lambda p: int(p.name.partition("-")[2] or 1))


def known_trials(path: Path) -> set[str]:
    """Folder names of the trials an experiment's saved state holds."""
    from ray.tune import ExperimentAnalysis

    return {Path(t.path).name for t in ExperimentAnalysis(str(path)).trials}


def unfinished_trials(path: Path) -> set[str]:
    """Ids and folder names of the trials an interrupted experiment left pending, running or paused."""
    from ray.tune import ExperimentAnalysis
    from ray.tune.experiment import Trial

    done = (Trial.TERMINATED, Trial.ERROR)
    return {x for t in ExperimentAnalysis(str(path)).trials if t.status not in done for x in (t.trial_id, Path(t.path).name)}


def finished_results(path: Path) -> list:
    """The results of an earlier, finished experiment, read from its folder (nothing is run)."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    return list(ResultGrid(ExperimentAnalysis(str(path))))


def build_tuner(cfg: SearchConfig, out: Path, splits: Splits, base: TrainConfig, search: Search, *,
                restore: Path | None = None, experiment: str = EXPERIMENT, callbacks: list | None = None):
    """A new Tuner writing to <storage>/<experiment>, or the interrupted one at `restore`."""
    from ray import tune

    storage = storage_dir(cfg, out)
    no_json_logger()
    pending_trials(search.max_pending)
    state_saves()
    if restore is not None:
        if not tune.Tuner.can_restore(str(restore)):
            raise InputError(f"--resume: nothing to resume in {restore} (no interrupted search of that --name)")
        log.info("restoring %s", restore)
        carry = ledger.read(out / ledger.LEDGER, restore.name, known_trials(restore))
        trainable = make_trainable(cfg, splits, base, search, restore, carry)
        return tune.Tuner.restore(str(restore), trainable=trainable, param_space=search.param_space,
                                  resume_unfinished=True, resume_errored=True, restart_errored=False)
    from tuning.results.progress_csv import progress_logger

    trainable = make_trainable(cfg, splits, base, search, storage / experiment)
    tune_config = tune.TuneConfig(
        metric=None if search.pareto else METRIC, mode=None if search.pareto else MODE,
        search_alg=search.search_alg, num_samples=search.num_samples,
        scheduler=None if search.pareto else make_scheduler(cfg, base.epochs, search.num_samples,
                                                             search.cohort or search.num_samples, search.protected),
        time_budget_s=search.time_budget_s,
        reuse_actors=True,  # resetting a worker costs far less than starting a fresh one
    )
    run_config = tune.RunConfig(
        name=experiment, storage_path=str(storage), verbose=1 if cfg.ray_output else 0,
        # Ray pickles these with the Tuner: a restored experiment keeps recording and pruning
        callbacks=[*(callbacks or []), backup_callback(storage / experiment),
                   ledger.ledger_callback((out / ledger.LEDGER).resolve(), experiment), checkpoint_pruner(),
                   progress_logger(), tensorboard_logger()],
        failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
        # Ray keeps every checkpoint (and forces no extra state saves): CheckpointPruner deletes old ones
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
    )
    return tune.Tuner(trainable, param_space=search.param_space, tune_config=tune_config, run_config=run_config)
