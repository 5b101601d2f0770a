"""results/<name>/trials.jsonl: an append-only record of every trial that started and ended.

Why: Ray saves its experiment state at most once a minute (tuning/driver/ray_env.py), because each
save rewrites every trial's state (saving on every step grew as N² over a search). A driver killed between two saves
leaves a state that lags: trials that ended since look unfinished, and trials started since are
unknown to it, so the searcher asks for them again (the grid the same point, Optuna the stored
trial: tuning/search/searcher.py). The driver appends a line here as each trial starts and ends, and
--resume reads it (`Carry`): a trial that ended is not trained again, and a trial started again
continues from the checkpoints of the incarnation Ray lost. Lines are only appended, never rewritten.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
LEDGER = "trials.jsonl"
STARTED, ENDED = "started", "ended"
ADOPTED = "adopted_from"  # metric of a trial asked again after a resume: the lost incarnation's folder...
ADOPTED_ID = "adopted_trial_id"  # ...and its trial id, under which the tables list the results it reports
AGAIN = "reported_again"  # an epoch reported again after a resume: the tables take it from the trial's history
BEST_BEFORE = "val_accuracy_best_before"  # ...with the best validation accuracy of the epochs it ran (for the study)


def config_key(config: dict[str, Any]) -> str:
    """A trial's configuration as one string, to find the incarnation Ray lost of a trial asked again."""
    return json.dumps(config, sort_keys=True, default=str)


def append(path: Path, event: str, experiment: str, trial: str, trial_id: str, config: dict[str, Any],
           **extra: Any) -> None:
    """One line per event; a line cut by a kill is skipped when read (the others stay valid)."""
    line = json.dumps({"event": event, "experiment": experiment, "trial": trial, "trial_id": trial_id,
                       "key": config_key(config), **extra})
    with open(path, "a") as f:
        f.write(line + "\n")


@dataclass(frozen=True)
class Carry:
    """What a resumed trial reads (passed to every trial of a restored experiment)."""

    ended: frozenset[str] = frozenset()
    """trial folder names of every trial that ended (finished, stopped, diverged, failed)."""
    lost: dict[str, list[str]] = field(default_factory=dict)
    """config key -> folders of trials that started with it but that Ray's saved state does not know."""
    ids: dict[str, str] = field(default_factory=dict)
    """trial folder name -> Ray trial id, for every trial the record names."""

    def lost_of(self, config: dict[str, Any]) -> list[str]:
        return self.lost.get(config_key(config), [])


def read(path: Path, experiment: str, known: set[str]) -> Carry:
    """The record of `experiment` at `path`; `known`: the trial folders Ray's saved state holds."""
    ended: set[str] = set()
    ids: dict[str, str] = {}
    started: dict[str, list[str]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return Carry()
    for n, line in enumerate(lines, 1):
        try:
            e = json.loads(line)
            key, trial, trial_id, event = e["key"], e["trial"], e["trial_id"], e["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s, line %d: not a whole record (cut by a kill?); skipped", path, n)
            continue
        if e.get("experiment") != experiment:
            continue
        ids[trial] = trial_id
        if event == ENDED:
            ended.add(trial)
        elif event == STARTED and trial not in known and trial not in started.setdefault(key, []):
            started[key].append(trial)
    return Carry(frozenset(ended), {k: v for k, v in started.items() if v}, ids)


def ledger_callback(path: Path, experiment: str):
    """A Tune callback appending each trial's start and end to the record at `path`."""
    from ray import tune

    class _Record(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            append(path, STARTED, experiment, Path(trial.path).name, trial.trial_id, trial.config)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._ended(trial, "terminated")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._ended(trial, "error")

        @staticmethod
        def _ended(trial, how: str) -> None:
            epoch = (trial.last_result or {}).get("epoch")
            append(path, ENDED, experiment, Path(trial.path).name, trial.trial_id, trial.config, how=how, epoch=epoch)

    return _Record()
