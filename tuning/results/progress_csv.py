"""Ray's per-trial progress.csv, written so that a resumed trial's rows stay under their columns.

Ray's CSVLoggerCallback takes its columns from the first result it logs in a process and, where the
trial's file already has rows, writes no header. A resumed trial's first result rarely has the keys
of the result that wrote the header (Ray adds `should_checkpoint` only to a report that carries a
checkpoint; a trial that had ended reports again with keys of its own), so every row it appended
slid under the wrong columns: `time_total_s` held the hostname and the tables failed (issue 28).
Here a continued file keeps its header's columns (a key it lacks is left out, a missing one left
empty), and a last row a kill cut short is ended first, so the next row does not join it.

Ray has no hook for the columns: this uses the logger's private parts (through tuning.compat, as
tuning/results/tensorboard.py does its writer's), checked once; a Ray without them gets its own logger
and a warning (the tables still read its files, leaving slid rows out).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import IO, Any

from tuning import compat

log = logging.getLogger(__name__)

PROGRESS = "progress.csv"  # Ray's per-trial result file (its CSV logger's; no result.json: tuning/driver/ray_env.py)


def continued_writer(f: IO[str], path: Path) -> csv.DictWriter | None:
    """The writer of a continued file (open to append): its header's columns, after ending a last row
    that a kill cut short; None where not even a whole header is there (the file is emptied)."""
    text = path.read_text(errors="replace")
    header = next(csv.reader([text.partition("\n")[0]]), []) if "\n" in text else []
    if not header:  # not even a whole header: start the file again
        f.truncate(0)
        return None
    if not text.endswith("\n"):
        f.write("\n")
    return csv.DictWriter(f, header, restval="", extrasaction="ignore")


def progress_logger() -> Any:
    """A CSVLoggerCallback whose continued files keep their columns (Ray's own where it lacks compat.CSV_PRIVATE)."""
    from ray.tune.logger import CSVLoggerCallback

    class _SameColumns(CSVLoggerCallback):
        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            f = compat.csv_open(self, trial)
            if f is not None:  # a file with rows, opened now
                compat.csv_continue(self, trial, continued_writer(f, Path(trial.local_path, PROGRESS)))
            super().log_trial_result(iteration, trial, result)

    logger = CSVLoggerCallback()
    missing = compat.csv_lacks(logger)
    if missing:
        import ray

        log.warning("Ray %s's CSV logger lacks %s: a resumed trial's progress.csv rows may slide under other "
                    "columns (the tables leave such rows out)", ray.__version__, ", ".join(missing))
        return logger
    return _SameColumns()
