"""The searcher: Ray's OptunaSearch, with study states that say what happened to each trial.

Ray's OptunaSearch marks every trial that Ray stops as COMPLETE. Here a trial stopped by ASHA
is PRUNED (with its per-epoch validation accuracy as intermediate values), a diverged trial
FAILED, and a finished one COMPLETE with its best validation accuracy.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from tuning import compat
from tuning.resume.ledger import ADOPTED_ID, BEST_BEFORE
from tuning.search.study import RAY_ID

log = logging.getLogger(__name__)


class StudySearch(OptunaSearch):
    """OptunaSearch whose study states follow what happened to the trial (see module doc).

    Why Ray's private parts (through tuning.compat): OptunaSearch has no public hook for how a trial
    ends, and it keeps the study, the Optuna trial of each Ray trial and the ended ones to itself;
    batches sample a trial's parameters through its define-by-run space. Overriding
    on_trial_complete needs all three; tests/tuning/search/test_searcher.py feeds recorded results through this class.
    """

    study = property(compat.searcher_study, doc="The Optuna study this searcher asks and tells.")
    ot_trials = property(compat.searcher_trials, doc="Ray trial id -> its Optuna trial.")
    told = property(compat.searcher_told, doc="Ray trial ids whose Optuna trial the study has been told.")

    def __init__(self, *args: Any, max_epochs: int, batch: int = 0, total: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_epochs = max_epochs
        self.best_seen: dict[str, float] = {}
        self.last_epoch: dict[str, int] = {}
        self.batch, self.left = batch, total  # batch > 0: --deterministic (see suggest)
        self.queued: list[optuna.trial.Trial] = []
        self.batch_ids: list[str] = []
        waiting = [t.number for t in self.study.get_trials(deepcopy=False) if t.state.name == "WAITING"]
        self.first_number = min(waiting, default=len(self.study.trials))  # this experiment's first trial
        self.adopt: list[int] = []

    def restore(self, checkpoint_path: str) -> None:
        """Ray's restore of this searcher. Trials of this experiment that the study holds and this
        state does not know were handed out after Ray's last save: they are handed out again first,
        with their own parameters, and the trainable carries on their checkpoints (tuning/resume/ledger.py)."""
        super().restore(checkpoint_path)
        # The sampler's random state is that of Ray's last save: unchanged, it would suggest again the
        # parameters it gave the trials started after that save, which are handed out again below.
        self.study.sampler.reseed_rng()
        known = set(self.ot_trials)
        for trial_id, ot_trial in self.ot_trials.items():  # ended after the save: told already
            if compat.trial_state(self.study, ot_trial).is_finished():
                self.told.add(trial_id)
        self.adopt = [t.number for t in self.study.get_trials(deepcopy=False)
                      if t.number >= getattr(self, "first_number", math.inf)  # (a state saved before it was kept)
                      and t.user_attrs.get(RAY_ID) not in (None, *known)]
        self.queued = [q for q in self.queued if q.number not in self.adopt]
        if self.adopt:
            log.info("handing out again %d trial(s) started after the last save: %s", len(self.adopt), self.adopt)

    def _adopt(self, trial_id: str) -> None:
        frozen = self.study.get_trials(deepcopy=False)[self.adopt.pop(0)]
        self.ot_trials[trial_id] = compat.trial_of(self.study, frozen)
        if frozen.state.is_finished():  # the study has its result already: nothing to tell again
            self.told.add(trial_id)
        if self.batch:
            self.batch_ids.append(trial_id)
            self.left -= 1

    def suggest(self, trial_id: str):
        """With `batch`, trials are asked `batch` at a time, each batch only once the one before has
        ended: what TPE sees then depends on results, not on the order trials happened to finish."""
        if trial_id not in self.ot_trials and self.adopt:
            self._adopt(trial_id)
        if self.batch and trial_id not in self.ot_trials:
            if not self.queued:
                if self.left <= 0 or any(t not in self.told for t in self.batch_ids):
                    return None  # Ray asks again later
                self.queued = [self._ask_now() for _ in range(min(self.batch, self.left))]
                self.batch_ids = []
            self.ot_trials[trial_id] = self.queued.pop(0)
            self.batch_ids.append(trial_id)
            self.left -= 1
        config = super().suggest(trial_id)
        if trial_id in self.ot_trials and trial_id not in self.told:
            self.ot_trials[trial_id].set_user_attr(RAY_ID, trial_id)
        return config

    def _ask_now(self) -> optuna.trial.Trial:
        """Ask a trial and sample all its parameters at once (Optuna samples lazily otherwise)."""
        ot_trial = self.study.ask()
        compat.sample_all(self, ot_trial)
        return ot_trial

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        acc = result.get("val_accuracy")
        if acc is None or math.isnan(acc) or trial_id in self.told or trial_id not in self.ot_trials:
            return  # (unknown: a trial of a state restored from a backup a second older than Ray's)
        epoch = int(result["epoch"])
        if self.last_epoch.get(trial_id) == epoch:  # already seen (a final result comes twice)
            return
        self.last_epoch[trial_id] = epoch
        before = result.get(BEST_BEFORE, -math.inf)  # a trial that ended before a resume reports its best too
        self.best_seen[trial_id] = max(acc, self.best_seen.get(trial_id, -math.inf),
                                       -math.inf if before is None or math.isnan(before) else before)
        if not isinstance(self.metric, list):  # Optuna keeps intermediate values for one objective only
            self.ot_trials[trial_id].report(acc, epoch)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.told or trial_id not in self.ot_trials:
            return
        if result and not error:  # the result that made the scheduler stop a trial comes only here
            self.on_trial_result(trial_id, result)
        ot_trial = self.ot_trials[trial_id]
        if (result or {}).get(ADOPTED_ID):  # it reported the epochs of a lost incarnation: the tables list it so
            ot_trial.set_user_attr(RAY_ID, result[ADOPTED_ID])
        state, values = optuna.trial.TrialState.COMPLETE, None
        # a trial that sync halving stops while paused at a rung ends without a result: its last one counts
        epoch = int((result or {}).get("epoch", self.last_epoch.get(trial_id, 0)))
        if error or (result or {}).get("diverged") or trial_id not in self.best_seen or (not result and not epoch):
            state = optuna.trial.TrialState.FAIL
        elif isinstance(self.metric, list):
            values = [self.best_seen[trial_id] if m == "val_accuracy" else float(result[m]) for m in self.metric]
        elif epoch < self.max_epochs:
            state = optuna.trial.TrialState.PRUNED
        else:
            values = self.best_seen[trial_id]
        try:
            self.study.tell(ot_trial, values, state=state)
        except Exception as e:  # noqa: BLE001 — a tell that fails must not stop the search
            log.warning("optuna could not record trial %s: %s", trial_id, e)
        self.told.add(trial_id)
