"""The Ray Tune trainable: the dataset, the MLP and model/train.py's loop, one report per epoch.

The data arrives once through the object store (`tune.with_parameters`). Every epoch reports its
metrics; a checkpoint goes with the report only where one can be needed
(`checkpoints.checkpoint_due`): at the scheduler's rungs (where a trial may be paused), at the
trial's end, and at least once a minute (so a retried or resumed trial loses at most about a
minute of training).
"""
from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from data.splits import Splits
from model.mlp import count_params
from model.config import TrainConfig
from model.loop import DeviceData, Run, build_run, fit, setup, to_device
from tuning.resume.checkpoints import (CHECKPOINT_AFTER_S, STATE_FILE, checkpoint_due, epoch_of, load_state, newest_history,
                                newest_state, write)
from tuning.resume.ledger import ADOPTED, ADOPTED_ID, AGAIN, BEST_BEFORE, Carry
from tuning.search.space import apply_params

log = logging.getLogger(__name__)


def latency_ms(model: torch.nn.Module, device: torch.device, batch: int = 1000, repeats: int = 5) -> float:
    """Median inference time of one batch of 1,000 images of the data's width: the latency objective."""
    x = torch.randn(batch, model.cfg.in_features, device=device)
    times = []
    model.eval()
    with torch.inference_mode():
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times[1:])[repeats // 2]


def trial_metrics(m: dict, run: Run, train_time_s: float, latency: float) -> dict[str, Any]:
    """What one epoch reports. A diverged epoch reports NaN accuracy (Optuna marks it failed)."""
    diverged = bool(m["diverged"])
    return {
        "epoch": m["epoch"], "train_loss": m["train_loss"], "train_accuracy": m["train_accuracy"],
        "val_loss": m["val_loss"], "val_accuracy": float("nan") if diverged else m["val_accuracy"],
        "lr": m["lr"], "epoch_time_s": m["epoch_time_s"], "diverged": diverged,
        "train_time_s": train_time_s, "params": count_params(run.model),
        "latency_ms": latency,
        "pid": os.getpid(), "timestamp": int(time.time()),  # Ray keeps ours: the history then matches progress.csv
        **node_identity(),
    }


@functools.cache
def node_identity() -> dict[str, str]:
    """The node this worker runs on. A node id belongs to one Ray cluster instance (its session): a
    local Ray started again for --resume gives the same machine a new one, so the session goes with
    it (the summary counts node ids per session), and the node's IP, which a restart keeps."""
    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "ray_session": context.get_session_name()}


_DEVICE_DATA: dict[tuple[str, str], DeviceData] = {}  # per worker process: reused actors skip the copy


def device_data(splits: Splits, device: torch.device) -> DeviceData:
    """Normalised tensors on `device`, made once per worker process and data set."""
    key = (splits.checksum, str(device))
    if key not in _DEVICE_DATA:
        _DEVICE_DATA.clear()
        _DEVICE_DATA[key] = to_device(splits, device)
    return _DEVICE_DATA[key]


def start_state(checkpoint: tune.Checkpoint | None, folders: list[Path]) -> tuple[dict | None, Path | None]:
    """Where a retried or resumed trial carries on: the newest of Ray's checkpoint and the newest whole
    one in each of `folders` (its own first, then its lost incarnations'; Ray's record can lag behind a
    driver that was killed), with the folder it came from; (None, None): from epoch 0."""
    best, source = None, folders[0] if folders else None
    if checkpoint is not None:
        try:
            with checkpoint.as_directory() as d:
                best = load_state(Path(d) / STATE_FILE)
        except (OSError, ValueError):  # pruned or never persisted: the folders below are read anyway
            best = None
    for folder in folders:
        on_disk = newest_state(folder)
        if epoch_of(on_disk) > epoch_of(best):
            best, source = on_disk, folder
    if checkpoint is not None and best is None:
        log.warning("no whole checkpoint of this trial: it restarts from epoch 0")
    return best, source if best is not None else None


def reported_again(history: list[dict[str, Any]], own: str, folder: str, carry: Carry | None) -> dict[str, Any]:
    """The report of a trial that had ended before a resume: its last epoch again, so the driver's
    tables and the study hold it even if the first report was lost with the driver. From a lost
    incarnation's folder, it names that folder and trial id, which the tables then list it under."""
    best = max((h["val_accuracy"] for h in history if not math.isnan(h["val_accuracy"])), default=float("nan"))
    last = {**history[-1], BEST_BEFORE: best}
    if folder == own or carry is None:
        return {**last, AGAIN: True}
    return {**last, ADOPTED: folder, ADOPTED_ID: carry.ids[folder]}


def ended_before(own: str, config: dict[str, Any], carry: Carry | None, experiment: Path) -> dict | None:
    """The report again of this trial, or of its lost incarnation, when the record says it ended
    before a resume; None: it has to train."""
    if carry is None:
        return None
    for folder in [own, *carry.lost_of(config)]:
        history = newest_history(experiment / folder) if folder in carry.ended else []
        if history:
            return reported_again(history, own, folder, carry)
    return None


def train_trial(config: dict[str, Any], splits: Splits, base: TrainConfig, measure_latency: bool = False,
                experiment: str | None = None, rungs: frozenset[int] = frozenset(), carry: Carry | None = None,
                checkpoint_s: float = CHECKPOINT_AFTER_S) -> None:
    """Function trainable: `config` holds the searched hyperparameters, `base` everything else.

    `experiment`: Ray's experiment folder in storage, where the trial's own checkpoints are read.
    `rungs`: the scheduler's rung epochs (checkpointed). `carry`: on --resume, what the record says.
    `checkpoint_s`: seconds between checkpoints elsewhere (--checkpoint-s).
    """
    own = Path(tune.get_context().get_trial_dir()).name
    folders = [Path(experiment) / f for f in [own, *(carry.lost_of(config) if carry else [])]] if experiment else []
    done = ended_before(own, config, carry, Path(experiment)) if experiment else None
    if done is not None:
        tune.report(done)
        return
    cfg = apply_params(base, config)
    device = setup(cfg)
    data = device_data(splits, device)
    run = build_run(cfg, data, device)
    saved, source = start_state(tune.get_checkpoint(), folders)
    history: list[dict[str, Any]] = saved["history"] if saved else []
    if saved is not None:  # a retried or resumed trial carries on from its last epoch
        if int(saved["metrics"]["epoch"]) >= cfg.epochs or saved["metrics"]["diverged"]:
            # it had finished when the driver died, before the record said so
            tune.report(reported_again(history, own, source.name if source else own, carry))
            return
        run.load_state_dict(saved["run"])
    # depends on the architecture only: measured once, and only for the latency objective
    latency = latency_ms(run.model, device) if measure_latency else float("nan")
    clock = {"train_s": 0.0, "t0": time.perf_counter(), "saved": time.monotonic()}

    def on_epoch(m: dict, r: Run) -> None:
        clock["train_s"] += time.perf_counter() - clock["t0"]
        metrics = trial_metrics(m, r, clock["train_s"], latency)
        history.append(metrics)
        if checkpoint_due(int(m["epoch"]), cfg.epochs, rungs, bool(m["diverged"]), time.monotonic() - clock["saved"],
                         checkpoint_s):
            with tempfile.TemporaryDirectory() as d:
                write(Path(d), r.state_dict(), history)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
            clock["saved"] = time.monotonic()
        else:
            tune.report(metrics)
        clock["t0"] = time.perf_counter()

    fit(run, data, on_epoch)
