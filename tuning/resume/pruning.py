"""Deleting checkpoints that can no longer be needed, so storage grows with the trials that matter.

A running trial keeps its newest two checkpoints (the newest may be cut by a kill; a retry or a
resume needs one whole). A trial that ended keeps only its newest checkpoint folder, and in it
only the epoch history (tuning/resume/checkpoints.py: the tables read it), except the best trial so far,
which keeps its model state too. Ray is told to keep every checkpoint (num_to_keep=None) so that
it never forces an experiment-state save to track deletions; a checkpoint Ray's state names that
is gone here is skipped on resume (tuning/driver/trainable.py reads the trial folders themselves).
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

from tuning.resume.checkpoints import STATE_FILE, histories

log = logging.getLogger(__name__)
KEEP_RUNNING = 2  # whole checkpoints a running trial keeps


def prune(trial_dir: Path, keep: int, keep_state: bool) -> int:
    """Delete all but the newest `keep` checkpoint folders of a trial, and the model state of the
    newest ones too unless `keep_state`; returns the bytes freed. Folders without a whole history
    (one being written) are left alone."""
    freed = 0
    for n, (_, folder) in enumerate(histories(trial_dir)):
        if n >= keep:
            freed += _size(folder)
            shutil.rmtree(folder, ignore_errors=True)
        elif not keep_state and (folder / STATE_FILE).exists():
            freed += (folder / STATE_FILE).stat().st_size
            (folder / STATE_FILE).unlink(missing_ok=True)
    return freed


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def checkpoint_pruner():
    """A Tune callback applying the policy above as trials checkpoint and end."""
    from ray import tune

    class _Pruner(tune.Callback):
        best = -math.inf  # best validation accuracy of an ended trial (in this driver's run)
        best_dir: Path | None = None

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
            _safe(prune, Path(trial.path), KEEP_RUNNING, True)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            acc = (trial.metric_analysis.get("val_accuracy") or {}).get("max", -math.inf)
            here = Path(trial.path)
            if isinstance(acc, (int, float)) and acc > self.best:
                if self.best_dir is not None:
                    _safe(prune, self.best_dir, 1, False)
                self.best, self.best_dir = acc, here
                _safe(prune, here, 1, True)
            else:
                _safe(prune, here, 1, False)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            _safe(prune, Path(trial.path), 1, False)

    return _Pruner()


def _safe(fn, *args) -> None:
    """Pruning must never stop a search: a failure is logged and the files stay."""
    try:
        fn(*args)
    except OSError as e:
        log.warning("could not prune checkpoints in %s: %s", args[0], e)
