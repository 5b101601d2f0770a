"""TensorBoard event files per trial, at a driver cost that stays small at thousands of trials.

Ray's own TBXLoggerCallback writes every numeric key of every result and flushes (with an fsync)
after each one: the largest single share of what a result cost the driver (benchmarks/README.md,
Scale). This one writes the epoch metrics of epochs.csv under the same tags (`ray/tune/<metric>`)
and leaves flushing to the writer's own 30-second timer and to the trial's end, so a killed driver
loses at most 30 s of curves (the tables do not come from these files).
"""
from __future__ import annotations

import math
from typing import Any

from tuning import compat
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

    Why Ray's private parts (through tuning.compat): Ray has no hook for what a result writes; its own
    log_trial_start (the writer, flush_secs=30) and log_trial_end (hparams, close) are kept. On a Ray
    version not tested here it is Ray's own logger (the same curves, and every other numeric key).
    """
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.result import TRAINING_ITERATION

    if not compat.RAY_TESTED:
        return TBXLoggerCallback()

    class _Scalars(TBXLoggerCallback):
        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            writer = compat.tbx_writer(self, trial)
            values = scalars(result)
            for tag, v in values.items():
                writer.add_scalar(tag, v, global_step=result.get(TRAINING_ITERATION))
            compat.tbx_hparams_values(self, trial, values)

    return _Scalars()
