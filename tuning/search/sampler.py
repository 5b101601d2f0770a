"""TPE that reads a bounded history: its cost per suggestion stops growing with the study.

Multivariate TPE fits its two densities to every finished trial on every suggestion, so its cost
grows with the study, inside Tune's loop while slots wait. Past `threshold` finished trials this sampler shows TPE only the best `best` trials
(ranked as TPE ranks them: completed by value, then pruned by the last epoch reached and its
value) plus the latest `latest` others, and the latest `running` running ones (the constant liar's
lies, all in TPE's "bad" density: under sync halving every paused trial is RUNNING to Optuna, up to
hundreds at once, and each of them makes an ask dearer). TPE's "good"
density is fitted to the top min(25, ⌈0.1·n⌉) of the n finished trials; here n is the whole
study's count, not the view's (`_StudyGamma`), so with `best` >= 25 the good density is fitted to
exactly the trials TPE would have used; only the "bad" density sees a sample (the latest `latest`
and the rest of the best). Below the threshold, and for several objectives, it is plain TPE.
Why 100 shown and not more: an ask's cost grows with the trials shown (benchmarks.suggest;
benchmarks/README.md, Scale), and the driver pays one per trial. Why 25
running: the trials that are executing are mostly the latest asked; past the threshold the lie about
them (not about trials paused at a rung long ago) is what keeps parallel suggestions apart.

Each suggestion also costs less through `vectorised_log_ndtr` (below).
"""
from __future__ import annotations

import heapq
import math
from typing import Any

import optuna
from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState

from tuning.compat import StudyView, sample_through_view, swap_log_ndtr

BEST = 25  # best trials always shown (>= 25, TPE's largest "good" set)
LATEST = 75  # most recent other finished trials shown: with the best, what the "bad" density is fitted to
RUNNING = 25  # most recent running trials shown past the threshold (the constant liar's; the asking one aside)
THRESHOLD = BEST + LATEST  # finished trials before the history is bounded; past it a suggestion costs what it does here


def rank_key(t: FrozenTrial, maximize: bool) -> tuple:
    """TPE's order for one objective: completed trials by value, then pruned ones by (last step, value)."""
    sign = -1 if maximize else 1
    if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value):
        return (0, 0, sign * t.value)
    if t.state == TrialState.PRUNED and t.intermediate_values:
        step, v = max(t.intermediate_values.items())
        return (1, -step, math.inf if math.isnan(v) else sign * v)
    return (2, 0, 0.0)


def bounded(trials: list[FrozenTrial], maximize: bool, threshold: int, best: int, latest: int,
            keys: dict[int, tuple] | None = None, running: int | None = None,
            asking: int | None = None) -> list[FrozenTrial]:
    """The trials TPE is shown, in trial order: all when at most `threshold` are finished.

    `running`: how many running trials are shown past the threshold, the latest ones other than
    `asking` (the trial being sampled, which TPE leaves out itself); None: all of them.
    `keys`: rank keys of finished trials from earlier calls (a finished trial's key never changes),
    so each trial is ranked once in a search, not once per ask."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(finished) <= threshold:
        return trials
    keys = {} if keys is None else keys
    for t in finished:
        if t.number not in keys:
            keys[t.number] = (rank_key(t, maximize), t.number)
    top = {t.number for t in heapq.nsmallest(best, finished, key=lambda t: keys[t.number])}
    rest = [t.number for t in finished if t.number not in top]
    rest = rest[len(rest) - latest:] if latest > 0 else []
    live = [t.number for t in trials if t.state == TrialState.RUNNING and t.number != asking]
    if running is not None:
        live = live[len(live) - running:] if running > 0 else []
    keep = top | set(rest) | set(live) | {asking}
    shown_by_state = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # the rest TPE filters itself
    return [t for t in trials if t.number in keep or t.state not in shown_by_state]


def vectorised_log_ndtr() -> None:
    """Optuna's TPE takes log Φ (the normal CDF) one element at a time in Python (np.frompyfunc; it
    avoids a SciPy dependency, optuna#5478): most of an ask's time in a large study (cProfile,
    benchmarks/README.md, Scale). scipy.special.log_ndtr computes it vectorised and agrees to
    rounding (tests/tuning/search/test_sampler.py). Swapped
    in for the whole process (tuning.compat.swap_log_ndtr; restore_log_ndtr puts Optuna's back) only
    where Optuna is a tested version that still has the function; idempotent."""
    from scipy.special import log_ndtr

    swap_log_ndtr(log_ndtr)


class _View(StudyView):
    """The study as TPE sees it: the same study, with a bounded trial list (computed once per ask:
    TPE samples each group of parameters apart, and re-ranking every finished trial for each group
    cost three sorts of the whole study per ask)."""

    def __init__(self, study: optuna.Study, sampler: "BoundedTPESampler", number: int) -> None:
        super().__init__(study)
        self._sampler, self._number = sampler, number

    def view_trials(self, deepcopy: bool, states: Any, use_cache: bool) -> list[FrozenTrial]:
        trials = super().view_trials(deepcopy, states, use_cache)
        s = self._sampler
        key = (self._number, len(trials), tuple(states or ()), deepcopy)
        if s._memo is None or s._memo[0] != key:
            maximize = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            s._memo = (key, bounded(trials, maximize, s.threshold, s.best, s.latest, s._keys, s.running, self._number),
                       finished)
        return s._memo[1]


class _Unseen(StudyView):
    """The study as the grouped search space reads it: only the trials it has not read before.

    Optuna's _GroupDecomposedSearchSpace adds every finished trial's distributions to its groups on
    every ask (O(N) per ask: a third of an ask at 1,000 trials). Adding a trial twice changes
    nothing, so reading each one once gives the same groups."""

    def __init__(self, study: optuna.Study, seen: set[int]) -> None:
        super().__init__(study)
        self._seen = seen

    def view_trials(self, deepcopy: bool, states: Any, use_cache: bool) -> list[FrozenTrial]:
        new = [t for t in super().view_trials(deepcopy, states, use_cache) if t.number not in self._seen]
        self._seen.update(t.number for t in new)
        return new


class _StudyGamma:
    """TPE's gamma (the size of the "good" set) of the whole study's finished trials, not of the
    view's: the view shows fewer, and TPE's own gamma of its count would shrink the good set."""

    def __init__(self, gamma: Any, sampler: "BoundedTPESampler") -> None:
        self.gamma, self._sampler = gamma, sampler

    def __call__(self, n: int) -> int:  # the memo holds this ask's count of the whole study's finished trials
        memo = self._sampler._memo
        return self.gamma(max(n, memo[2] if memo else 0))


@sample_through_view
class BoundedTPESampler(TPESampler):
    """TPESampler whose suggestions read at most `best` + `latest` finished trials and `running`
    running ones past `threshold` (running None: every running trial)."""

    running: int | None = None  # a sampler pickled before `running` existed (a resumed search) shows them all

    def __init__(self, *args: Any, threshold: int = THRESHOLD, best: int = BEST, latest: int = LATEST,
                 running: int | None = RUNNING, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.threshold, self.best, self.latest, self.running = threshold, best, latest, running
        self._memo: tuple[tuple, list[FrozenTrial], int] | None = None
        self._seen: set[int] = set()  # trials the grouped search space has read
        self._keys: dict[int, tuple] = {}  # rank keys of finished trials (bounded)
        vectorised_log_ndtr()

    def __getstate__(self) -> dict:  # Ray pickles the searcher with its sampler: its caches stay out
        return {**self.__dict__, "_memo": None, "_keys": {}}

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return super().infer_relative_search_space(_Unseen(study, self._seen), trial)  # type: ignore[arg-type]

    def view(self, study: optuna.Study, trial: FrozenTrial) -> _View:
        """The study as TPE sees it for one ask, with one objective (tuning.compat.sample_through_view)."""
        return _View(study, self, trial.number)

    def study_gamma(self, gamma: Any) -> _StudyGamma:
        """TPE's gamma, given the whole study's count of finished trials (for one ask: it is not pickled)."""
        return _StudyGamma(gamma, self)
