"""Ray's per-trial progress.csv, written so that a resumed trial's rows stay under their columns.

Ray's CSVLoggerCallback takes its columns from the first result it logs in a process and, where the
trial's file already has rows, writes no header. A resumed trial's first result rarely has the keys
of the result that wrote the header (Ray adds `should_checkpoint` only to a report that carries a
checkpoint; a trial that had ended reports again with keys of its own), so every row it appended
slid under the wrong columns: `time_total_s` held the hostname and the tables failed (issue 28).
Here a continued file keeps its header's columns (a key it lacks is left out, a missing one left
empty), and a last row a kill cut short is ended first, so the next row does not join it.

Ray has no hook for the columns: this uses the logger's private attributes (as tuning/results/tensorboard.py
does its writer's), checked once; a Ray without them gets its own logger and a warning (the tables
still read its files, leaving slid rows out).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROGRESS = "progress.csv"  # Ray's per-trial result file (its CSV logger's; no result.json: tuning/driver/ray_env.py)
PRIVATE = ("_trial_files", "_trial_csv", "_trial_continue", "_setup_trial")  # what the subclass relies on


def progress_logger() -> Any:
    """A CSVLoggerCallback whose continued files keep their columns (Ray's own where it lacks PRIVATE)."""
    from ray.tune.logger import CSVLoggerCallback

    class _SameColumns(CSVLoggerCallback):
        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            if trial not in self._trial_files:
                self._setup_trial(trial)
                if self._trial_continue[trial]:
                    self._continue(trial)
            super().log_trial_result(iteration, trial, result)

        def _continue(self, trial: Any) -> None:
            f, path = self._trial_files[trial], Path(trial.local_path, PROGRESS)
            text = path.read_text(errors="replace")
            header = next(csv.reader([text.partition("\n")[0]]), []) if "\n" in text else []
            if not header:  # not even a whole header: start the file again
                f.truncate(0)
                self._trial_continue[trial] = False
                return
            if not text.endswith("\n"):
                f.write("\n")
            self._trial_csv[trial] = csv.DictWriter(f, header, restval="", extrasaction="ignore")

    logger = CSVLoggerCallback()
    missing = [name for name in PRIVATE if not hasattr(logger, name)]
    if missing:
        import ray

        log.warning("Ray %s's CSV logger lacks %s: a resumed trial's progress.csv rows may slide under other "
                    "columns (the tables leave such rows out)", ray.__version__, ", ".join(missing))
        return logger
    return _SameColumns()
