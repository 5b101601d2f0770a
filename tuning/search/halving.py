"""Synchronous successive halving: rung decisions that depend on results, not on arrival order.

Ray's ASHA judges each trial against whichever trials reached its rung first, so a busy machine, a
slower CPU or another number of slots changes its decisions (issue 15). Here trials are taken in
cohorts, in the order the search created them. A trial that reaches a rung pauses (checkpointed,
its slot freed for the others) until every live trial of its cohort has reported there; then the
best 1/reduction_factor of them (ties: the earlier trial) go on and the rest stop. The same results
give the same decisions, however they arrive.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

log = logging.getLogger(__name__)
RUNG_ATTR = "epoch"  # what the trainable reports; it continues across retries and resumes
def rung_epochs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """Epochs at which trials are compared: grace·η^k below max_t (ASHA's rungs)."""
    out, r = [], float(grace_period)
    while r < max_t:
        out.append(int(round(r)))
        r *= reduction_factor
    return out


def promoted(scores: dict[int, float], reduction_factor: float) -> set[int]:
    """Trials (by creation index) that go on from a rung: the best max(1, ⌊n/η⌋); NaN ranks last,
    ties go to the earlier trial."""
    keep = max(1, int(len(scores) / reduction_factor))
    key = lambda i: (math.inf if math.isnan(scores[i]) else -scores[i], i)  # noqa: E731
    return set(sorted(scores, key=key)[:keep])


class SyncHalving(TrialScheduler):
    """Synchronous successive halving over cohorts of `cohort` consecutive trials (module doc)."""

    _supports_buffered_results = False  # one decision per reported rung

    def __init__(self, max_t: int, grace_period: int, reduction_factor: float, cohort: int, total: int,
                 metric: str = "val_accuracy", protected: frozenset[int] = frozenset()):
        """`protected`: trials (by creation index) that every rung keeps, such as the warm start, so that
        a search never ends below its trial 0 trained to the last epoch."""
        super().__init__()
        self.protected = frozenset(protected)
        self._metric = metric
        self.rungs = rung_epochs(max_t, grace_period, reduction_factor)
        self.eta, self.cohort, self.total = reduction_factor, max(1, cohort), total
        self.index: dict[str, int] = {}  # trial_id -> creation order
        self.trials: dict[int, Trial] = {}
        self.scores: dict[tuple[int, int], dict[int, float]] = {}  # (cohort, rung) -> {index: metric}
        self.decided: dict[tuple[int, int], set[int]] = {}
        self.gone: set[int] = set()  # ended: completed, stopped, failed
        self.unpause: set[int] = set()  # promoted, paused at the rung, not yet running again
        self.fresh: deque[int] = deque()  # added, perhaps not started yet: the candidates to run first

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode are fixed by the constructor

    def members(self, c: int) -> range:
        return range(c * self.cohort, min((c + 1) * self.cohort, self.total))

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if trial.trial_id not in self.index:
            i = len(self.index)
            self.index[trial.trial_id], self.trials[i] = i, trial
            self.fresh.append(i)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        i = self.index[trial.trial_id]
        self.unpause.discard(i)
        epoch = int(result.get(RUNG_ATTR, 0))
        if epoch not in self.rungs:
            return TrialScheduler.CONTINUE
        key = (i // self.cohort, epoch)
        if key in self.decided:  # a report seen again (a retried trial)
            return TrialScheduler.CONTINUE if i in self.decided[key] else TrialScheduler.STOP
        value = result.get(self._metric)
        self.scores.setdefault(key, {})[i] = math.nan if value is None else float(value)
        return self._decide(tune_controller, key, current=i)

    def _decide(self, tune_controller: Any, key: tuple[int, int], current: int | None = None) -> str:
        """PAUSE while a live member of the cohort has not reported at this rung; else decide it."""
        seen = self.scores.get(key, {})
        if not seen or any(j not in seen and j not in self.gone for j in self.members(key[0])):
            return TrialScheduler.PAUSE
        keep = promoted(seen, self.eta) | (self.protected & seen.keys())
        self.decided[key] = keep
        log.debug("rung %s of cohort %s: %s of %s go on", key[1], key[0], len(keep), len(seen))
        action = TrialScheduler.PAUSE
        for j in seen:
            if j == current:
                action = TrialScheduler.CONTINUE if j in keep else TrialScheduler.STOP
            elif j in self.gone:
                continue
            elif j in keep:
                self.unpause.add(j)
            else:
                self.gone.add(j)
                tune_controller.stop_trial(self.trials[j])
        if action == TrialScheduler.STOP and current is not None:
            self.gone.add(current)
        return action

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        i = self.index.get(trial.trial_id)
        if i is None or i in self.gone:
            return
        self.gone.add(i)
        self.unpause.discard(i)
        c = i // self.cohort
        for key in [k for k in self.scores if k[0] == c and k not in self.decided]:
            self._decide(tune_controller, key)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """The earliest-created PENDING trial among the new ones and the promoted ones Ray has
        staged (so one promoted trial is staged at a time, as before), else the earliest promoted
        trial still PAUSED: new trials first, since every trial reaches the first rung.

        Ray calls this on every step of its loop. Walking every trial there (as Ray's FIFO does)
        costs O(N) per step, and a 3,000-trial search takes some 30,000 steps. Here the work is
        O(1) amortised plus the promoted set: trials are started in creation order, so those that
        left PENDING are dropped from the front of `fresh` for good. A trial that goes back to
        PENDING later (a retry) is started by Ray's own queue of pending trials.
        """
        while self.fresh and self.trials[self.fresh[0]].status != Trial.PENDING:
            self.fresh.popleft()
        pending = [i for i in self.unpause if self.trials[i].status == Trial.PENDING]
        if self.fresh:
            pending.append(self.fresh[0])
        if pending:
            return self.trials[min(pending)]
        ready = [i for i in self.unpause if self.trials[i].status == Trial.PAUSED]
        return self.trials[min(ready)] if ready else None

    def debug_string(self) -> str:
        return f"synchronous successive halving, rungs {self.rungs}, cohorts of {self.cohort}"
