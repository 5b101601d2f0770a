"""Every private part of Optuna and Ray that the project uses, in one place, checked against the
versions tested here.

Why private parts at all: the bounded TPE history, the searcher's study states, the TensorBoard and
progress.csv loggers and the state backups need hooks the libraries do not offer (each function says
which). On import the installed versions are checked: an untested major or minor version logs one
warning per library, and the parts that have a public equivalent giving the same results use it
instead (OPTUNA_TESTED, RAY_TESTED); the rest keep the private part, as the warning says.

Importing this module imports neither library (`python -m tuning.report` runs without Ray); each
function imports what it needs.
"""
from __future__ import annotations

import functools
import logging
import re
from importlib import metadata
from typing import Any, Callable

log = logging.getLogger(__name__)

TESTED = {"optuna": ((5, 0), (5, 1)), "ray": ((2, 60),)}
"""(major, minor) versions the tests pass with."""
FALLBACK = {
    "optuna": "TPE keeps Optuna's own log Φ (slower) and trial lists come from the public get_trials; "
              "the bounded TPE history still relies on Optuna's private parts",
    "ray": "TensorBoard files come from Ray's own logger (every numeric key, flushed on each result); "
           "the searcher, progress.csv's columns and the state backups still rely on Ray's private parts",
}


def installed(library: str) -> str | None:
    """The installed version (read without importing the library), or None."""
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return None


def check_version(library: str, version: str | None) -> bool:
    """Whether `version` of `library` is a tested one; if not, one warning that says what falls back.
    A library that is not installed is not used: False, silently."""
    if version is None:
        return False
    m = re.match(r"(\d+)\.(\d+)", version)
    if m and (int(m[1]), int(m[2])) in TESTED[library]:
        return True
    tested = ", ".join(f"{a}.{b}" for a, b in TESTED[library])
    log.warning("%s %s is not a version tested here (%s): %s", library, version, tested, FALLBACK[library])
    return False


OPTUNA_TESTED = check_version("optuna", installed("optuna"))
RAY_TESTED = check_version("ray", installed("ray"))


# --- Optuna: TPE's log Φ --------------------------------------------------------------------------

def truncnorm() -> Any:
    """Optuna's module of TPE's truncated normal, or None where Optuna has moved it."""
    try:
        from optuna.samplers._tpe import _truncnorm
    except ImportError:
        return None
    return _truncnorm


@functools.cache
def optunas_log_ndtr() -> Callable | None:
    """Optuna's own log Φ (element by element in Python), read before any swap; None where it has none."""
    return getattr(truncnorm(), "_log_ndtr", None)


def log_ndtr_in_use() -> Callable | None:
    """The log Φ TPE computes with now."""
    return getattr(truncnorm(), "_log_ndtr", None)


def swap_log_ndtr(fn: Callable) -> bool:
    """TPE computes log Φ with `fn`, in the whole process, until restore_log_ndtr. True where swapped.

    Why private: TPE looks the function up in its private module on each call and takes no other.
    Not on an untested Optuna, nor where it lacks the function: its own gives the same values."""
    if not OPTUNA_TESTED or not callable(optunas_log_ndtr()):
        return False
    truncnorm()._log_ndtr = fn
    return True


def restore_log_ndtr() -> None:
    """Optuna's own log Φ back in TPE (A/Bs in one process)."""
    if callable(optunas_log_ndtr()):
        truncnorm()._log_ndtr = optunas_log_ndtr()


# --- Optuna: what TPE reads of a study ------------------------------------------------------------

def study_trials(study: Any, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
    """The study's trials, as its samplers read them: the private _get_trials can reuse the study's
    cached list (what TPE itself asks for); an untested Optuna gets the public get_trials (the same trials)."""
    if OPTUNA_TESTED:
        return study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
    return study.get_trials(deepcopy=deepcopy, states=states)


class StudyView:
    """A study whose trial list, as Optuna's samplers read it, is `view_trials`; everything else is the
    study's. Why private: samplers and search spaces read trials through the study's _get_trials,
    which a view must answer; Optuna has no public hook for the trials a sampler sees."""

    def __init__(self, study: Any) -> None:
        self.study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self.study, name)

    def view_trials(self, deepcopy: bool, states: Any, use_cache: bool) -> list:
        return study_trials(self.study, deepcopy, states, use_cache)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
        return self.view_trials(deepcopy, states, use_cache)


def default_gamma() -> Callable[[int], int]:
    """TPE's own size of the "good" set for one objective, min(25, ⌈0.1·n⌉) (Optuna's where it still has it)."""
    try:
        from optuna.samplers._tpe.sampler import default_gamma as gamma
    except ImportError:
        import math

        def gamma(n: int) -> int:
            return min(math.ceil(0.1 * n), 25)
    return gamma


def sample_through_view(cls: type) -> type:
    """Class decorator for a TPESampler subclass: with one objective, TPE samples from
    `self.view(study, trial)` with the good set sized by `self.study_gamma(gamma)` (TPE's gamma wrapped,
    for that ask only); with several it is TPE's own.

    Why private: TPE fits its densities in its _sample and keeps its gamma in _gamma; neither has a
    public hook. A pickled sampler holds TPE's own gamma, never the wrapped one."""

    def _sample(self: Any, study: Any, trial: Any, search_space: dict) -> dict:
        if len(study.directions) > 1:
            return super(cls, self)._sample(study, trial, search_space)
        gamma = self._gamma
        self._gamma = self.study_gamma(gamma or default_gamma())
        try:
            return super(cls, self)._sample(self.view(study, trial), trial, search_space)
        finally:
            self._gamma = gamma

    cls._sample = _sample
    return cls


# --- Optuna: trials by id -------------------------------------------------------------------------

def trial_of(study: Any, frozen: Any) -> Any:
    """A live optuna.trial.Trial for a stored trial, to report and tell through. Why private: Trial
    is made from the storage's trial id, which a FrozenTrial keeps in _trial_id (no public getter)."""
    import optuna

    return optuna.trial.Trial(study, frozen._trial_id)


def trial_state(study: Any, trial: Any) -> Any:
    """The stored state of a live trial: read by id from the study's private _storage (one trial);
    an untested Optuna reads the public trial list (the same state, a whole list read)."""
    if OPTUNA_TESTED:
        return study._storage.get_trial(trial._trial_id).state
    return study.get_trials(deepcopy=False)[trial.number].state


# --- Ray: OptunaSearch ----------------------------------------------------------------------------
# Why private: OptunaSearch has no public hook for how a trial ends and keeps to itself the study, the
# Optuna trial of each Ray trial and the Ray trials it has told; tuning/search/searcher.py needs all three.

def searcher_study(search: Any) -> Any:
    """The Optuna study an OptunaSearch asks and tells."""
    return search._ot_study


def searcher_trials(search: Any) -> dict:
    """Ray trial id -> the Optuna trial an OptunaSearch handed it (the searcher's own dict: changes stick)."""
    return search._ot_trials


def searcher_told(search: Any) -> set:
    """Ray trial ids whose Optuna trial an OptunaSearch has told (its own set: changes stick)."""
    return search._completed_trials


def sample_all(search: Any, ot_trial: Any) -> None:
    """Sample every parameter of `ot_trial` now through the OptunaSearch's define-by-run space."""
    search._suggest_from_define_by_run_func(search._space, ot_trial)


# --- Ray: TensorBoard logger ----------------------------------------------------------------------
# Why private: TBXLoggerCallback keeps each trial's writer in _trial_writer and the values for the
# hparams summary in _trial_result, and has no hook for what a result writes.

def tbx_writer(logger: Any, trial: Any) -> Any:
    """The trial's SummaryWriter, opened by Ray's own log_trial_start where there is none yet."""
    if trial not in logger._trial_writer:
        logger.log_trial_start(trial)
    return logger._trial_writer[trial]


def tbx_hparams_values(logger: Any, trial: Any, values: dict) -> None:
    """The values Ray's log_trial_end writes in the trial's hparams summary."""
    logger._trial_result[trial] = values


# --- Ray: CSV logger ------------------------------------------------------------------------------
# Why private: CSVLoggerCallback takes its columns from the first result it logs, with no hook;
# tuning/results/progress_csv.py keeps a continued file's own. Ray's logger without them is no
# equivalent (a resumed trial's rows slide under other columns), so they are kept on any Ray that has them.

CSV_PRIVATE = ("_trial_files", "_trial_csv", "_trial_continue", "_setup_trial")


def csv_lacks(logger: Any) -> list[str]:
    """The private parts of Ray's CSV logger that this Ray lacks."""
    return [name for name in CSV_PRIVATE if not hasattr(logger, name)]


def csv_open(logger: Any, trial: Any) -> Any | None:
    """Open the trial's file where the logger has not yet: the file where it continues one with rows, else None."""
    if trial in logger._trial_files:
        return None
    logger._setup_trial(trial)
    return logger._trial_files[trial] if logger._trial_continue[trial] else None


def csv_continue(logger: Any, trial: Any, writer: Any | None) -> None:
    """A continued file's rows go through `writer` (a csv.DictWriter); None: the file starts again,
    and Ray writes its header."""
    if writer is None:
        logger._trial_continue[trial] = False
    else:
        logger._trial_csv[trial] = writer


# --- Ray: experiment state files ------------------------------------------------------------------
# Ray's own names (the CKPT_FILE_TMPL of TuneController, BasicVariantGenerator, SearchGenerator and
# Searcher, with the session's timestamp as *); tests/tuning/test_compat.py checks them against Ray's.

EXPERIMENT_STATE = "experiment_state-*.json"
SEARCH_STATES = ("basic-variant-state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")
"""The searcher's files beside the experiment state; all are pickles, whatever their suffix."""
