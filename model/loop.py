"""The training loop on tensors held in memory: a seeded randperm per epoch, batches by slicing.

Pure functions (no files, no printing): `fit` runs epochs and hands each epoch's metrics to a
callback, which is where `python -m model.train` prints and the Ray trainable reports.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from common.errors import InputError
from data.splits import Splits, normalise
from model.augment import augment
from model.config import TrainConfig
from model.mlp import MLP
from model.precision import auto_dtype, has_native_bf16
from model.step import train_step  # noqa: F401 - the eager step, also imported from here

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA GPU is available here")
    return torch.device(name)


def setup(cfg: TrainConfig) -> torch.device:
    """The one seeding block, plus threads and device."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or len(os.sched_getaffinity(0)))
    return resolve_device(cfg.device)


def autocast_dtype(precision: str, device: torch.device,
                   probe: Callable[[], torch.dtype | None] | None = None) -> torch.dtype | None:
    """bf16 when asked; for 'auto', what `probe` measured (model.precision: bf16 only where the
    hardware has bf16 units and it was clearly faster at this shape); None = fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if not has_native_bf16(device):
        return None
    return probe() if probe is not None else torch.bfloat16


@dataclass
class DeviceData:
    """Normalised float32 (N, H*W) tensors on the training device, moved there once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    background: float  # normalised value of a zero pixel, for shifted-in borders
    image_shape: tuple[int, int]  # (height, width) of the flattened rows
    num_classes: int


def to_device(splits: Splits, device: torch.device | str) -> DeviceData:
    m, s = splits.mean, splits.std
    return DeviceData(
        normalise(splits.train_x, m, s, device), splits.train_y.to(device),
        normalise(splits.val_x, m, s, device), splits.val_y.to(device), background=-m / s,
        image_shape=splits.image_shape, num_classes=len(splits.classes),
    )


@dataclass
class Run:
    """Model, optimiser and schedule of one training, plus the epochs done (for checkpoints)."""

    cfg: TrainConfig
    model: MLP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    image_shape: tuple[int, int]  # (height, width) of the inputs, for the augmentation
    epoch: int = 0
    amp: torch.dtype | None = None  # autocast dtype of the forward pass (None = fp32)
    static_step: Any = None  # model.graphed.StaticStep once a static epoch ran (not part of the state)

    def state_dict(self) -> dict:
        """A deep copy: torch's state dicts alias live tensors (momentum buffers included)."""
        return copy.deepcopy({
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None, "epoch": self.epoch,
        })

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.static_step = None  # new optimiser state tensors: a captured graph would still hold the old ones


def build_run(cfg: TrainConfig, data: DeviceData, device: torch.device) -> Run:
    """The MLP for the data's (H, W) images and K classes, its optimiser and schedule over its training images."""
    image_shape, num_classes, n_train = data.image_shape, data.num_classes, len(data.train_y)
    model = MLP(cfg.mlp(image_shape[0] * image_shape[1], num_classes)).to(device)
    params = model.parameters()
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay, fused=True,  # one kernel per step: what small batches are bound by
        )
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    steps = math.ceil(n_train / cfg.batch_size)
    sched: torch.optim.lr_scheduler.LRScheduler | None = None
    if cfg.schedule == "cosine":  # stepped per batch, so short runs still anneal smoothly
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * cfg.epochs)
    elif cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=steps * cfg.step_size, gamma=cfg.gamma)
    in_features = image_shape[0] * image_shape[1]
    key = (str(device), in_features, tuple(cfg.hidden_sizes), num_classes, cfg.batch_size, cfg.layer_norm,
           cfg.dropout > 0, cfg.optimizer)
    probe = lambda: auto_dtype(key, lambda: MLP(cfg.mlp(in_features, num_classes)), cfg.batch_size,  # noqa: E731
                               in_features, num_classes, device)
    return Run(cfg, model, opt, sched, image_shape=tuple(image_shape), amp=autocast_dtype(cfg.precision, device, probe))


def train_epoch(
    run: Run, x: torch.Tensor, y: torch.Tensor, background: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """One pass in a seeded random order; returns mean loss/accuracy and whether it diverged.

    Divergence (a non-finite loss) is checked every 50 steps so the hot loop rarely syncs.
    """
    cfg, model = run.cfg, run.model
    epoch_seed = cfg.seed * 100_003 + run.epoch  # depends only on (seed, epoch): resumes repeat exactly
    gen = torch.Generator().manual_seed(epoch_seed)
    model.seed_dropout(epoch_seed)
    model.train()
    perm = torch.randperm(len(y), generator=gen).to(x.device)
    if cfg.cuda_graphs and x.device.type == "cuda":  # launch-bound there: one graph replay per step
        from model.graphed import static_epoch

        return static_epoch(run, x, y, background, perm, gen, progress)
    # Gather each batch into one reused buffer: copying the whole split per epoch costs a fresh
    # 150 MB allocation whose page faults outweigh the copy (the buffer is free again once
    # backward() has used the saved input).
    xbuf = x.new_empty((min(cfg.batch_size, len(y)), *x.shape[1:]))
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    seen, diverged = 0, False
    for step, i in enumerate(range(0, len(y), cfg.batch_size)):
        idx = perm[i:i + cfg.batch_size]
        xb, yb = torch.index_select(x, 0, idx, out=xbuf[:len(idx)]), y[idx]
        xb = augment(xb, cfg, background, gen, run.image_shape)
        loss, logits = train_step(run, xb, yb)
        loss_sum += loss * len(yb)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(yb)
        if progress is not None:
            progress(len(yb))
        if step % 50 == 49 and not torch.isfinite(loss_sum):
            diverged = True
            break
    loss_mean = float(loss_sum) / max(seen, 1)
    diverged = diverged or not math.isfinite(loss_mean)
    return {"train_loss": loss_mean, "train_accuracy": int(correct) / max(seen, 1), "diverged": diverged}


@torch.inference_mode()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """Logits for x in large batches, dropout off."""
    model.eval()
    if not len(x):
        return x.new_zeros(0, model.cfg.num_classes)
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    logits = predict(model, x)
    if not len(y):
        return {"loss": float("nan"), "accuracy": float("nan")}
    return {
        "loss": float(F.cross_entropy(logits, y)),
        "accuracy": float((logits.argmax(1) == y).float().mean()),
    }


def test_metrics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Test-set figures for reports: accuracy, loss, per-class accuracy and the K x K confusion matrix
    (both in class-index order, the order of the data's `classes`), predictions."""
    from sklearn.metrics import confusion_matrix

    logits = predict(model, x)
    pred = logits.argmax(1)
    cm = confusion_matrix(y.cpu().numpy(), pred.cpu().numpy(), labels=list(range(logits.shape[1])))
    per_class = (np.diag(cm) / np.maximum(cm.sum(1), 1)).tolist()
    return {
        "test_accuracy": float((pred == y).float().mean()), "test_loss": float(F.cross_entropy(logits, y)),
        "per_class_accuracy": per_class, "confusion_matrix": cm.tolist(), "predictions": pred.cpu().numpy(),
    }


EpochCallback = Callable[[dict, Run], bool | None]


def fit(run: Run, data: DeviceData, on_epoch: EpochCallback | None = None,
        progress: Callable[[int], None] | None = None) -> list[dict]:
    """Train from run.epoch to cfg.epochs. `on_epoch(metrics, run)` returning False stops early.

    A diverged epoch is reported (diverged=True, losses non-finite) and ends training.
    """
    history = []
    while run.epoch < run.cfg.epochs:
        t0 = time.perf_counter()
        lr = run.optimizer.param_groups[0]["lr"]
        m = train_epoch(run, data.train_x, data.train_y, data.background, progress)
        run.epoch += 1
        val = evaluate(run.model, data.val_x, data.val_y) if not m["diverged"] else {"loss": float("nan"), "accuracy": 0.0}
        m.update(epoch=run.epoch, lr=lr, val_loss=val["loss"], val_accuracy=val["accuracy"],
                 epoch_time_s=time.perf_counter() - t0)
        history.append(m)
        if on_epoch is not None and on_epoch(m, run) is False:
            break
        if m["diverged"]:
            log.info("training diverged at epoch %d (non-finite loss)", run.epoch)  # callers report it
            break
    return history
