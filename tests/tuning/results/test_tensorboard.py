"""tuning/results/tensorboard.py: what a trial's TensorBoard file holds."""
from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from tuning import compat
from tuning.results.tensorboard import SCALARS, scalars, tensorboard_logger


def read_scalars(path: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from a TensorBoard event file (TFRecord frames of Event protos)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    data, i = path.read_bytes(), 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        for v in ev.summary.value:
            out.setdefault(v.tag, {})[ev.step] = v.simple_value
    return out


def test_scalars_are_the_epoch_metrics_under_rays_tags():
    result = {"epoch": 3, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9, "lr": 0.1,
              "epoch_time_s": 2.0, "diverged": False, "pid": 7, "timestamp": 1, "params": 1000, "config": {"lr": 0.1}}
    assert scalars(result) == {"ray/tune/train_loss": 0.5, "ray/tune/train_accuracy": 0.8, "ray/tune/val_loss": 0.4,
                               "ray/tune/val_accuracy": 0.9, "ray/tune/lr": 0.1, "ray/tune/epoch_time_s": 2.0}
    assert SCALARS == ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_time_s")


def test_scalars_leave_out_values_that_are_not_finite():
    assert scalars({"train_loss": math.nan, "val_loss": math.inf, "val_accuracy": 0.5}) == {"ray/tune/val_accuracy": 0.5}


class FakeTrial:
    """What Ray's TensorBoard logger reads of a trial (no parameters: no hparams summary)."""

    evaluated_params: dict = {}

    def __init__(self, folder: Path):
        self.local_path = str(folder)

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def test_a_trials_file_holds_the_epoch_metrics_only(tmp_path):
    # Rule: each result writes its epoch metrics, at Ray's training iteration, and nothing else.
    logger, trial = tensorboard_logger(), FakeTrial(tmp_path / "t")
    for i in (1, 2):
        logger.log_trial_result(i, trial, {"epoch": i, "val_accuracy": 0.5 + i / 10, "params": 1000,
                                           "training_iteration": i, "time_total_s": 3.0})
    logger.log_trial_end(trial)
    [events] = (tmp_path / "t").glob("events.out.tfevents.*")
    assert read_scalars(events) == {"ray/tune/val_accuracy": pytest.approx({1: 0.6, 2: 0.7})}


def test_on_an_untested_ray_it_is_rays_own_logger(monkeypatch):
    # Rule: where Ray is not a tested version, its own TBXLoggerCallback writes the files (public API only).
    from ray.tune.logger import TBXLoggerCallback

    monkeypatch.setattr(compat, "RAY_TESTED", False)
    assert type(tensorboard_logger()) is TBXLoggerCallback
