"""TensorBoard event files per trial, at a driver cost that stays small at thousands of trials.

Ray's own TBXLoggerCallback writes every numeric key of every result and flushes (with an fsync)
after each one: about 5 ms of the driver's time per result, the largest single share of what a
result costs it (benchmarks/README.md, Scale). This one writes the epoch metrics of epochs.csv
under the same tags (`ray/tune/<metric>`) and leaves flushing to the writer's own 30-second timer
and to the trial's end, so a killed driver loses at most 30 s of curves (the tables do not come
from these files).
"""
from __future__ import annotations

import math
from typing import Any

from tuning.results.tables import EPOCH_COLUMNS

WHERE = ("pid", "timestamp", "node_id", "node_ip", "ray_session")  # which worker ran an epoch, when, where: no curves
SCALARS = tuple(c for c in EPOCH_COLUMNS if c not in ("trial_id", "epoch", "diverged", *WHERE))
TAG = "ray/tune/"  # Ray's prefix, so TensorBoard shows the curves where it always has


def scalars(result: dict[str, Any]) -> dict[str, float]:
    """The finite epoch metrics of one result, tagged as TensorBoard shows them."""
    out = {}
    for k in SCALARS:
        v = result.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[TAG + k] = float(v)
    return out


def tensorboard_logger():
    """A TBXLoggerCallback (Ray then adds no logger of its own kind) that writes `scalars` only.

    Why private attributes: Ray keeps each trial's writer in `_trial_writer` and the last values for
    the hparams summary in `_trial_result`, and has no hook for what a result writes; its own
    log_trial_start (the writer, flush_secs=30) and log_trial_end (hparams, close) are kept.
    """
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.result import TRAINING_ITERATION

    class _Scalars(TBXLoggerCallback):
        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            if trial not in self._trial_writer:
                self.log_trial_start(trial)
            values = scalars(result)
            writer = self._trial_writer[trial]
            for tag, v in values.items():
                writer.add_scalar(tag, v, global_step=result.get(TRAINING_ITERATION))
            self._trial_result[trial] = values

    return _Scalars()
